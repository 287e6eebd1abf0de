"""Building a FAISS index for ``retrieval.DenseRetriever``: an ``index_factory`` key checked with a clear error, the
rows an IVF or PQ index trains on, FAISS's k-means complaints said once, and FAISS's threads (notebooks 02 and 06).

>>> make_index("IVF4,Flat", 8).nlist
4
"""

from __future__ import annotations

import contextlib
import warnings

import faiss
import numpy as np

# FAISS and torch share one OpenMP runtime here, so faiss.omp_set_num_threads(n) also sets torch's thread
# count. Exact search over a corpus of this size is fast on one thread, and a busy OpenMP pool slowed the next
# query encoding on a loaded 2-core machine; but leaving the runtime at one thread made every later torch op
# (the cross-encoder's scoring above all) about 1.6x slower. So each FAISS call runs on FAISS_THREADS and then
# gives the runtime back as it found it (``faiss_threads``); for a corpus of millions, raise FAISS_THREADS.
FAISS_THREADS = 1


@contextlib.contextmanager
def faiss_threads():
    """Run the block with FAISS (and the shared OpenMP runtime) on ``FAISS_THREADS``, then restore the count."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(FAISS_THREADS)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def make_index(key: str, dim: int):
    """An empty inner-product FAISS index for ``dim``-d vectors from its ``index_factory`` key; a key FAISS cannot
    build is a ``ValueError`` saying why, with examples of keys.

    >>> make_index("HNSW32", 8).d
    8
    >>> make_index("Bogus42", 8)
    Traceback (most recent call last):
    ...
    ValueError: 'Bogus42' is not a FAISS index_factory key for 8-d vectors (could not parse index string Bogus42): ...
    """
    if key == "Flat":
        return faiss.IndexFlatIP(dim)
    try:
        return faiss.index_factory(dim, key, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:  # FAISS's message: "Error in <C++ function> at <file>:<line>: <reason>"
        reason = str(err).split(": ", 1)[-1].replace("Error: ", "")
        raise ValueError(f"{key!r} is not a FAISS index_factory key for {dim}-d vectors ({reason}): use e.g. 'Flat', "
                         "'HNSW32', 'IVF256,Flat' or 'IVF256,PQ48' (PQm: m must divide the dimension).") from None


def index_parts(index) -> list:
    """``index`` as its own FAISS class, and its IVF part when it has one (behind a transform, say)."""
    ivf = faiss.try_extract_index_ivf(index)
    return [faiss.downcast_index(index)] + ([faiss.downcast_index(ivf)] if ivf is not None else [])


def training_sample(index, key: str, d_emb: np.ndarray, train_size: int | None, seed: int = 0) -> np.ndarray:
    """The rows ``index`` is trained on: all of ``d_emb``, or a seeded sample of ``train_size`` rows.

    k-means needs at least as many vectors as centroids: nlist for IVF, 2^nbits (256) per PQ sub-quantizer.
    """
    ivf = faiss.try_extract_index_ivf(index)
    need = max([ivf.nlist if ivf is not None else 1] + [p.pq.ksub for p in index_parts(index) if hasattr(p, "pq")])
    n = len(d_emb) if train_size is None else min(train_size, len(d_emb))
    if n < need:
        raise ValueError(
            f"index {key!r} needs at least {need} vectors to train but got {n}: use fewer IVF lists (about "
            f"4 sqrt(N) for N vectors), or an index that needs no training: 'HNSW32', or the exact 'Flat'."
        )
    if n == len(d_emb):
        return d_emb
    return d_emb[np.sort(np.random.default_rng(seed).choice(len(d_emb), n, replace=False))]


def few_rows_said_once(index, key: str, n: int) -> None:
    """FAISS prints a line for every k-means run that gets fewer than ``min_points_per_centroid`` (39) rows a
    centroid: 49 identical lines for ``"IVF256,PQ48"`` on 5,183 vectors (the lists, then each of the 48 PQ
    codebooks). Say it once, as a Python warning, and let those runs go on quietly (k-means still runs on the
    ``n`` rows it has; its centroids are only rougher)."""
    ivf = faiss.try_extract_index_ivf(index)
    runs = ([(ivf.cp, ivf.nlist)] if ivf is not None else []) + [
        (part.pq.cp, part.pq.ksub) for part in index_parts(index) if hasattr(part, "pq")]
    short = [(cp, k) for cp, k in runs if n < cp.min_points_per_centroid * k]
    if short:
        k = max(k for _, k in short)
        warnings.warn(f"index {key!r}: k-means on {n} vectors for {k} centroids, fewer than the "
                      f"{short[0][0].min_points_per_centroid} a centroid FAISS asks for; it trains anyway, with "
                      "rougher centroids (more vectors to train on, or fewer lists, make them finer).", stacklevel=4)
    for cp, _ in short:
        cp.min_points_per_centroid = 1


def build_index(key: str, d_emb: np.ndarray, train_size: int | None = None):
    """The FAISS index ``key`` over ``d_emb`` (N, D) float32, trained first when it needs it (on all rows, or a
    seeded sample of ``train_size``), on ``FAISS_THREADS``.

    >>> build_index("IVF2,Flat", np.eye(8, dtype=np.float32)).ntotal
    8
    """
    index = make_index(key, d_emb.shape[1])
    for part in index_parts(index):  # the factory sets PQ to learn polysemous codes (for Hamming-filtered search,
        if hasattr(part, "do_polysemous_training"):  # unused here): 20x slower training for nothing
            part.do_polysemous_training = False
    with faiss_threads():
        if not index.is_trained:
            sample = training_sample(index, key, d_emb, train_size)
            few_rows_said_once(index, key, len(sample))
            index.train(sample)
        index.add(d_emb)
    return index
