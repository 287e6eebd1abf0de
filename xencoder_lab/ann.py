"""Approximate indexes measured against exact search (notebook 06; ``benchmarks/ann.py`` at up to 1M vectors).

Each plan names a FAISS ``index_factory`` key (``"Flat"``, ``"HNSW32"``, ``"IVF256,Flat"``, ``"IVF256,PQ48"``) and
the search settings to try on it (``{"efSearch": 64}``, ``{"nprobe": 8}``). Each index is built once
(``retrieval.DenseRetriever``) and searched at each setting, one query at a time, as a user sends them. The exact
``Flat`` index is the ground truth and the baseline:

    recall@k = 1/Q sum_i |approx_i[:k] & exact_i[:k]| / k          exact_i: Flat's top k for query i, all at once
    speed-up = p50(Flat) / p50(index)                              p50: median seconds of one query searched alone

An IVF index has ``nlist`` k-means lists; about 4 sqrt(N) of them for N vectors (``nlist``) keeps both the
lists' centroids a query compares with and the vectors of the lists it scans few.

>>> rng = np.random.default_rng(0)
>>> d_emb = rng.normal(size=(300, 16)).astype(np.float32)               # (N, D)
>>> q_emb = rng.normal(size=(5, 16)).astype(np.float32)                 # (Q, D)
>>> rows = measure_indexes(d_emb, q_emb, [("Flat", None), ("HNSW32", [{"efSearch": 16}])], warmup=1)
>>> list(rows), rows["Flat"]["recall@10"], rows["Flat"]["speed-up"], 0 <= rows["HNSW32 efSearch=16"]["recall@10"] <= 1
(['Flat', 'HNSW32 efSearch=16'], 1.0, 1.0, True)
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from .retrieval import DenseRetriever, recall_at
from .timing import Stopwatch, time_calls


def nlist(n: int) -> int:
    """IVF lists for ``n`` vectors: 4 sqrt(n), rounded to a power of two.

    >>> nlist(5183), nlist(1_000_000)
    (256, 4096)
    """
    return 2 ** int(round(np.log2(4 * np.sqrt(n))))


def measure_indexes(d_emb: np.ndarray, q_emb: np.ndarray,
                    plans: Sequence[tuple[str, Sequence[Mapping[str, int]] | None]], k: int = 10,
                    train_size: int | None = None, warmup: int = 5,
                    on_row: Callable[[str, dict], None] | None = None) -> dict[str, dict]:
    """Build time, bytes per vector, recall@k of the exact top k, one-query latency and speed-up of each index
    setting in ``plans``.

    Flat is built and measured first, whatever its place in ``plans``, then dropped; then each other index is
    built, measured at each of its settings and dropped: one index is held at a time.

    Args:
        d_emb: document embeddings (N, D).
        q_emb: query embeddings (Q, D), at least one.
        plans: ``(index_factory key, search settings or None)`` pairs, e.g. ``[("Flat", None), ("HNSW32",
            [{"efSearch": 16}, {"efSearch": 64}])]``; one of them must be ``("Flat", None)``.
        k: the cut-off of recall and of each search.
        train_size: rows an index that needs training trains on (a seeded sample); None: all.
        warmup: untimed searches before each setting's timed ones.
        on_row: called with ``(label, row)`` as each row is measured (to print progress).

    Returns:
        one row per index and setting, in the order of ``plans``, keyed ``"Flat"``, ``"HNSW32 efSearch=16"``, ...:
        ``{"build s": train + add seconds (0.1), "bytes/vector": serialised index / N (whole bytes), "ms p50",
        "ms p95": one query's latency in ms (0.001), f"recall@{k}": (0.001), "speed-up": (0.1)}``, rounded so.

    Raises:
        ValueError: no ``Flat`` plan, no queries, or ``q_emb`` not (Q, D) with Q >= 1.
    """
    plans = [(key, list(settings) if settings else [{}]) for key, settings in plans]
    if "Flat" not in [key for key, _ in plans]:
        raise ValueError('plans need ("Flat", None): exact search is the ground truth of recall and the '
                         "baseline of the speed-up.")
    q_emb = np.ascontiguousarray(q_emb, dtype=np.float32)
    if q_emb.ndim != 2 or len(q_emb) == 0:
        raise ValueError(f"q_emb must be (Q, D) with at least one query, got shape {q_emb.shape}.")
    ids = [str(i) for i in range(len(d_emb))]
    measured = {}
    exact = flat_p50 = None
    for key, settings in sorted(plans, key=lambda plan: plan[0] != "Flat"):  # Flat first: truth and baseline
        watch = Stopwatch()
        retriever = DenseRetriever(d_emb, ids, index=key, train_size=train_size)
        build = watch.seconds
        if exact is None:
            exact, _ = retriever.search(q_emb, k=k)  # the ground truth, all queries at once
        for setting in settings:
            retriever.set_search(**setting)
            found, seconds = _timed_searches(retriever, q_emb, k, warmup)  # Q lists of ids, (Q,)
            p50 = float(np.median(seconds)) * 1e3
            flat_p50 = flat_p50 or p50
            label = key + "".join(f" {name}={value}" for name, value in setting.items())
            measured[label] = row = {
                "build s": round(build, 1), "bytes/vector": round(retriever.bytes_per_vector()),
                "ms p50": round(p50, 3), "ms p95": round(float(np.percentile(seconds, 95)) * 1e3, 3),
                f"recall@{k}": round(recall_at(found, exact, k=k), 3),  # Flat too: must be 1
                "speed-up": round(flat_p50 / p50, 1)}
            if on_row is not None:
                on_row(label, row)
        del retriever
    order = [key + "".join(f" {n}={v}" for n, v in s.items()) for key, settings in plans for s in settings]
    return {label: measured[label] for label in order}


def _timed_searches(retriever: DenseRetriever, q_emb: np.ndarray, k: int, warmup: int
                    ) -> tuple[list[list[str]], np.ndarray]:
    """Each query of ``q_emb`` (Q, D) searched alone, as (1, D), after ``warmup`` untimed searches: (top-k ids per
    query, seconds per query (Q,))."""
    timed = list(time_calls(lambda q: retriever.search(q[None], k=k)[0][0], q_emb, warmup=warmup))
    return [ids for ids, _ in timed], np.array([seconds for _, seconds in timed])
