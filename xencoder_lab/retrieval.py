"""Dense retrieval: exact top-k by inner product over document embeddings, with FAISS (built in notebook 02).

``IndexFlatIP`` compares a query with every document, exactly, like ``q_emb @ d_emb.T`` followed by a top-k,
but in optimised C++ and without holding the (Q, N) score matrix. With normalised embeddings the inner
product is the cosine. Notebook 06 trades exactness for speed with approximate indexes.

    scores[i, r] = q_i . d_{top_r(i)}                       top_r(i): the r-th best document for query i

``search`` returns document ids, not row numbers, like ``bm25.BM25.search``.

>>> d_emb = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
>>> retriever = DenseRetriever(d_emb, ids=["a", "b", "c"])
>>> ids, scores = retriever.search(np.array([[0.0, 1.0]], dtype=np.float32), k=2)
>>> ids, scores.round(2)
([['c', 'b']], array([[1. , 0.8]], dtype=float32))
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from .cache import atomic_write

# FAISS and torch share one OpenMP runtime here, so faiss.omp_set_num_threads(n) also sets torch's thread
# count. Exact search over a corpus of this size is fast on one thread, and a busy OpenMP pool slowed the next
# query encoding on a loaded 2-core machine; but leaving the runtime at one thread made every later torch op
# (the cross-encoder's scoring above all) about 1.6x slower. So each FAISS call runs on FAISS_THREADS and then
# gives the runtime back as it found it (``_faiss_threads``); for a corpus of millions, raise FAISS_THREADS.
FAISS_THREADS = 1


@contextlib.contextmanager
def _faiss_threads():
    """Run the block with FAISS (and the shared OpenMP runtime) on ``FAISS_THREADS``, then restore the count."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(FAISS_THREADS)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class DenseRetriever:
    """Exact inner-product search over ``d_emb`` (N, D); one id per row."""

    def __init__(self, d_emb: np.ndarray, ids: Sequence[str]):
        d_emb = np.ascontiguousarray(d_emb, dtype=np.float32)
        if d_emb.ndim != 2:
            raise ValueError(f"d_emb must be 2-D (N, D), got shape {d_emb.shape}.")
        if len(d_emb) == 0:
            raise ValueError("the corpus is empty: a retriever needs at least one document embedding.")
        self.ids = [str(doc_id) for doc_id in ids]
        if len(self.ids) != len(d_emb):
            raise ValueError(f"got {len(d_emb)} embeddings but {len(self.ids)} ids; give one id per row.")
        self.index = faiss.IndexFlatIP(d_emb.shape[1])
        with _faiss_threads():
            self.index.add(d_emb)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.index.d

    def search(self, q_emb: np.ndarray, k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query: (ids, one list per query; scores, float32 (Q, k)), best first."""
        q_emb = np.ascontiguousarray(q_emb, dtype=np.float32)
        if q_emb.ndim != 2 or q_emb.shape[1] != self.dim:
            raise ValueError(
                f"q_emb has shape {q_emb.shape} but the index holds {self.dim}-d vectors: give (Q, {self.dim}), "
                "e.g. q_emb.reshape(1, -1) for one query, encoded by the model that encoded the corpus."
            )
        if not 1 <= k <= len(self):
            raise ValueError(f"k={k} but the corpus has {len(self)} documents: use 1 <= k <= {len(self)}.")
        if len(q_emb) == 0:
            return [], np.zeros((0, k), dtype=np.float32)
        with _faiss_threads():
            scores, rows = self.index.search(q_emb, k)  # (Q, k), (Q, k)
        return [[self.ids[r] for r in row] for row in rows], scores

    def save(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``index.faiss`` and ``ids.json`` to ``folder``, each atomically.

        ``ids.json`` is written last and holds a digest of the index file, so ``load`` can tell a save that
        was cut off halfway. An existing, different saved index is kept unless ``overwrite=True``.
        """
        folder = Path(folder)
        data = faiss.serialize_index(self.index).tobytes()
        if (folder / "ids.json").exists() and not overwrite:
            old = json.loads((folder / "ids.json").read_text())
            if old["ids"] != self.ids or old["sha256"] != hashlib.sha256(data).hexdigest():
                raise FileExistsError(f"{folder} holds a different saved index: pass overwrite=True to replace.")
        atomic_write(folder / "index.faiss", lambda tmp: tmp.write_bytes(data))
        meta = json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "ids": self.ids})
        atomic_write(folder / "ids.json", lambda tmp: tmp.write_text(meta))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "DenseRetriever":
        """The retriever ``save`` wrote to ``folder``, identical to the one saved."""
        folder = Path(folder)
        meta = json.loads((folder / "ids.json").read_text())
        data = (folder / "index.faiss").read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ValueError(f"{folder}/index.faiss does not match ids.json: an interrupted save? Save it again.")
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        return cls(index.reconstruct_n(0, index.ntotal), meta["ids"])


class DenseSearcher:
    """A ``BiEncoder`` and the exact index of a corpus it embedded: query texts in, ids and scores out.

    The same interface as ``bm25.BM25.search``, so a pipeline takes either as its first stage. The corpus is
    embedded once (``bi_encoder.encode_corpus``, from the disk cache after the first time).
    """

    def __init__(self, model, ds, cache_root: str | os.PathLike | None = None):
        from .bi_encoder import encode_corpus

        self.model = model
        self.index = DenseRetriever(encode_corpus(model, ds, cache_root=cache_root), list(ds.corpus))

    def __len__(self) -> int:
        return len(self.index)

    def search(self, queries: Sequence[str], k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query text: (ids, one list per query; scores (Q, k)), best first."""
        if isinstance(queries, str):
            raise TypeError("give a list of queries, not one string: e.g. search([query]).")
        q_emb = self.model.encode_queries(list(queries), show_progress=False)  # (Q, D): short texts, seconds
        return self.index.search(q_emb, k=k)


def run_queries(searcher, ds, k: int = 100) -> dict[str, list[str]]:
    """``{query id: top-k document ids}`` for every query of ``ds``, from any first stage with
    ``search(texts, k)`` (``bm25.BM25``, ``DenseSearcher``)."""
    qids = list(ds.queries)
    ids, _ = searcher.search([ds.queries[q] for q in qids], k=k)
    return dict(zip(qids, ids))


def dense_run(model, ds, k: int = 100) -> dict[str, list[str]]:
    """Rank ``ds.corpus`` for every query of ``ds`` with a ``BiEncoder``: {query id: top-k document ids}."""
    return run_queries(DenseSearcher(model, ds), ds, k)
