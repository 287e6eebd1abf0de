"""Dense retrieval: top-k by inner product over document embeddings, with FAISS (built in notebook 02; the
approximate indexes in notebook 06).

``IndexFlatIP`` compares a query with every document, exactly, like ``q_emb @ d_emb.T`` followed by a top-k,
but in optimised C++ and without holding the (Q, N) score matrix. With normalised embeddings the inner
product is the cosine. Notebook 06 trades exactness for speed with approximate indexes, named by FAISS's
``index_factory`` (``index="HNSW32"``, ``"IVF256,Flat"``, ``"IVF256,PQ48"``): a graph walked greedily (HNSW), or
the corpus cut into k-means lists of which a query scans the ``nprobe`` nearest (IVF), the vectors kept whole
(Flat) or as product-quantised codes (PQ48: 48 bytes a vector). ``set_search`` turns the search-time knob
(``efSearch``, ``nprobe``), ``recall_at`` says how much of the exact top k an approximate index finds.

    scores[i, r] = q_i . d_{top_r(i)}                       top_r(i): the r-th best document for query i

``search`` returns document ids, not row numbers, like ``bm25.BM25.search``.

>>> d_emb = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
>>> retriever = DenseRetriever(d_emb, ids=["a", "b", "c"])
>>> ids, scores = retriever.search(np.array([[0.0, 1.0]], dtype=np.float32), k=2)
>>> ids, scores.round(2)
([['c', 'b']], array([[1. , 0.8]], dtype=float32))
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import AbstractSet, Sequence

import faiss
import numpy as np

from .cache import atomic_write
from .data import empty_documents
from .faiss_index import build_index, faiss_threads


class DenseRetriever:
    """Inner-product search over ``d_emb`` (N, D); one id per row. Exact (``index="Flat"``, the default) or
    approximate: any FAISS ``index_factory`` key, trained on the embeddings (or a seeded sample of
    ``train_size`` of them) when the index needs training.

    Args:
        d_emb: document embeddings (N, D), copied as float32.
        ids: one document id per row.
        index: a FAISS ``index_factory`` key, e.g. ``"Flat"``, ``"HNSW32"``, ``"IVF1024,PQ64"``.
        train_size: rows the index trains on (a seeded sample); None: all.

    Raises:
        ValueError: ``d_emb`` not 2-D or empty, not one id per row, a bad key, or too few rows to train on.

    >>> d_emb = np.eye(4, dtype=np.float32)
    >>> retriever = DenseRetriever(d_emb, list("abcd"), index="HNSW32").set_search(efSearch=16)
    >>> retriever.search(d_emb[2:3], k=1)[0], retriever.search_params
    ([['c']], {'efSearch': 16})
    """

    def __init__(self, d_emb: np.ndarray, ids: Sequence[str], index: str = "Flat", train_size: int | None = None):
        d_emb = np.ascontiguousarray(d_emb, dtype=np.float32)
        if d_emb.ndim != 2:
            raise ValueError(f"d_emb must be 2-D (N, D), got shape {d_emb.shape}.")
        if len(d_emb) == 0:
            raise ValueError("the corpus is empty: a retriever needs at least one document embedding.")
        self.ids = [str(doc_id) for doc_id in ids]
        if len(self.ids) != len(d_emb):
            raise ValueError(f"got {len(d_emb)} embeddings but {len(self.ids)} ids; give one id per row.")
        self.kind = index
        self.index = build_index(index, d_emb, train_size)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.index.d

    @property
    def search_params(self) -> dict[str, int]:
        """The search-time knobs this index has, and their values: ``efSearch`` (HNSW), ``nprobe`` (IVF)."""
        params = {}
        hnsw = getattr(faiss.downcast_index(self.index), "hnsw", None)
        if hnsw is not None:
            params["efSearch"] = hnsw.efSearch
        ivf = faiss.try_extract_index_ivf(self.index)
        if ivf is not None:
            params["nprobe"] = ivf.nprobe
        return params

    def set_search(self, **params: int) -> "DenseRetriever":
        """Set search-time knobs, e.g. ``set_search(nprobe=16)``: more is slower and finds more of the exact top k.

        ``efSearch`` (HNSW): how many candidates the graph walk keeps (at least k). ``nprobe`` (IVF): how many of
        the nlist lists a query scans, about nprobe / nlist of the corpus. Saved with the index. Returns self.

        Args:
            **params: knob values, e.g. ``efSearch=64`` or ``nprobe=16``.

        Returns:
            this ``DenseRetriever``.

        Raises:
            ValueError: a knob this index does not have.
        """
        for name, value in params.items():
            if name not in self.search_params:
                knobs = self.search_params or "none"
                raise ValueError(f"{name} does not apply to index {self.kind!r}; its search knobs: {knobs}.")
            faiss.ParameterSpace().set_index_parameter(self.index, name, int(value))
        return self

    def bytes_per_vector(self) -> float:
        """Memory the index takes per document: bytes of the serialised index (``save``'s file) / N.

        Flat and HNSW keep 4 D bytes a vector (HNSW adds about 2 M neighbour ids of 4 bytes each); IVF-PQ keeps
        the code (m bytes for PQm) and an 8-byte id, plus the centroids, shared by all.

        Returns:
            bytes per document, a float.
        """
        size = [0]

        def count(chunk: bytes) -> int:  # counted as written, not held: serialize_index would copy a 1M index twice
            size[0] += len(chunk)
            return len(chunk)

        faiss.write_index(self.index, faiss.PyCallbackIOWriter(count))
        return size[0] / len(self)

    def search(self, q_emb: np.ndarray, k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query: (ids, one list per query; scores, float32 (Q, k)), best first.

        An approximate index can find fewer than ``k`` (an IVF index whose ``nprobe`` lists hold fewer): then
        that query's list is shorter and its missing scores are ``-inf``.

        Args:
            q_emb: query embeddings (Q, D), by the model that embedded the corpus.
            k: documents per query, 1 to N.

        Returns:
            ``(ids, scores)``: Q lists of at most k document ids, best first, and scores (Q, k) float32.

        Raises:
            ValueError: ``q_emb`` not (Q, D), or ``k`` outside 1..N.
        """
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
        with faiss_threads():
            scores, rows = self.index.search(q_emb, k)  # (Q, k), (Q, k); row -1: not found
        scores[rows < 0] = -np.inf
        return [[self.ids[r] for r in row if r >= 0] for row in rows], scores

    def save(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``index.faiss`` and ``ids.json`` to ``folder``, each atomically.

        ``ids.json`` is written last and holds a digest of the index file, so ``load`` can tell a save that
        was cut off halfway. An existing, different saved index is kept unless ``overwrite=True``.

        Args:
            folder: where to write (created if missing).
            overwrite: replace a different index saved there.

        Returns:
            the folder, as a ``Path``.

        Raises:
            FileExistsError: the folder holds a different saved index and ``overwrite`` is False.
        """
        folder = Path(folder)
        data = faiss.serialize_index(self.index).tobytes()
        if (folder / "ids.json").exists() and not overwrite:
            old = json.loads((folder / "ids.json").read_text())
            if old["ids"] != self.ids or old["sha256"] != hashlib.sha256(data).hexdigest():
                raise FileExistsError(f"{folder} holds a different saved index: pass overwrite=True to replace.")
        atomic_write(folder / "index.faiss", lambda tmp: tmp.write_bytes(data))
        meta = json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "index": self.kind, "ids": self.ids})
        atomic_write(folder / "ids.json", lambda tmp: tmp.write_text(meta))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "DenseRetriever":
        """The retriever ``save`` wrote to ``folder``, identical to the one saved (its index read back as is).

        Args:
            folder: a folder ``save`` wrote.

        Returns:
            a ``DenseRetriever``.

        Raises:
            ValueError: the index file does not match ``ids.json`` (an interrupted save).
        """
        folder = Path(folder)
        meta = json.loads((folder / "ids.json").read_text())
        data = (folder / "index.faiss").read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise ValueError(f"{folder}/index.faiss does not match ids.json: an interrupted save? Save it again.")
        retriever = cls.__new__(cls)
        retriever.index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        retriever.ids, retriever.kind = meta["ids"], meta.get("index", "Flat")
        return retriever


def synthetic_embeddings(real: np.ndarray, n: int, data: str, noise: float, seed: int = 0) -> np.ndarray:
    """(n, D) float32 unit vectors for a scale test (``data``): ``"replicate"``, row i is ``real[i % len(real)]``
    plus seeded Gaussian noise with ``real``'s own covariance times ``noise``, renormalised (the spectrum stays the
    real corpus's); or ``"random"``, uniform on the sphere (no structure: the hardest case for an ANN index).

    Args:
        real: real embeddings (M, D) to replicate.
        n: rows to make.
        data: ``"replicate"`` or ``"random"``.
        noise: the noise's scale relative to ``real``'s covariance (``"replicate"`` only).
        seed: seed of the noise.

    Returns:
        (n, D) float32 array of unit rows.

    Raises:
        ValueError: an unknown ``data``.

    >>> real = np.eye(3, dtype=np.float32)
    >>> big = synthetic_embeddings(real, n=7, data="replicate", noise=0.1)
    >>> big.shape, bool(np.allclose(np.linalg.norm(big, axis=1), 1.0)), int(np.argmax(big[4]))
    ((7, 3), True, 1)
    """
    if data not in ("replicate", "random"):
        raise ValueError(f"data={data!r}: use 'replicate' or 'random'.")
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    if data == "replicate":
        eigval, eigvec = np.linalg.eigh(np.cov(real.T))  # covariance (D, D) = V diag(eigval) V^T
        scale = (eigvec * np.sqrt(np.clip(eigval, 0, None))).T.astype(np.float32)  # (D, D): z @ scale ~ N(0, cov)
    for start in range(0, n, 100_000):  # in chunks: a (1M, D) temporary would double the memory
        rows = np.arange(start, min(n, start + 100_000))
        z = rng.standard_normal((len(rows), real.shape[1]), dtype=np.float32)  # (B, D)
        out[rows] = real[rows % len(real)] + noise * (z @ scale) if data == "replicate" else z
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def top_k(scores: np.ndarray, ids: Sequence[str], k: int) -> tuple[list[list[str]], np.ndarray]:
    """The best ``k`` of each row of a score matrix (Q, N) over documents ``ids``: (ids, scores (Q, k)), best
    first, ties in corpus order. For models an inner-product index cannot search (poly-encoder, ColBERT).

    >>> top_k(np.array([[0.1, 0.9, 0.5]]), ["a", "b", "c"], k=2)
    ([['b', 'c']], array([[0.9, 0.5]]))
    """
    if scores.ndim != 2 or scores.shape[1] != len(ids):
        raise ValueError(f"need scores (Q, N) for N = {len(ids)} documents, got shape {scores.shape}.")
    if not 1 <= k <= len(ids):
        raise ValueError(f"k={k} but the corpus has {len(ids)} documents: use 1 <= k <= {len(ids)}.")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (Q, k)
    return [[ids[i] for i in row] for row in top], np.take_along_axis(scores, top, axis=1)


def recall_at(approx_ids: Sequence[Sequence], exact_ids: Sequence[Sequence], k: int = 10) -> float:
    """Share of the exact top ``k`` that an approximate search found in its own top ``k``, over Q queries:

        recall@k = 1/Q sum_i |approx_i[:k] & exact_i[:k]| / k

    Args:
        approx_ids: the approximate search's ids, one ranked list per query.
        exact_ids: the exact search's ids, one ranked list of at least ``k`` per query.
        k: the cut-off.

    Returns:
        recall@k in [0, 1].

    Raises:
        ValueError: not one result of each per query, an exact list shorter than ``k``, or no queries.

    >>> recall_at([["a", "x", "b"], ["d", "c"]], [["a", "b", "c"], ["c", "d", "e"]], k=2)  # (1/2 + 2/2) / 2
    0.75
    """
    if len(approx_ids) != len(exact_ids):
        raise ValueError(f"got {len(approx_ids)} approximate results but {len(exact_ids)} exact ones: one per query.")
    if any(len(exact) < k for exact in exact_ids):
        raise ValueError(f"every exact result needs at least k={k} ids.")
    if len(exact_ids) == 0:
        raise ValueError("no queries: recall needs at least one.")
    found = [len(set(list(approx)[:k]) & set(list(exact)[:k])) / k for approx, exact in zip(approx_ids, exact_ids)]
    return float(np.mean(found))


def make_store(d_emb: np.ndarray, ids: Sequence[str], where: str = "faiss", **options):
    """A store holding ``d_emb`` (N, D), one id per row: ``where="faiss"`` (``DenseRetriever``; ``options``: its
    ``index``), or Qdrant: ``":memory:"``, a folder, or a URL (``store.QdrantStore``; ``options``: its own).
    Either answers ``len(store)`` and ``store.search(q_emb, k)`` (``store.Store``)."""
    if where == "faiss":
        return DenseRetriever(d_emb, ids, **options)
    from .store import QdrantStore  # the `scale` extra, only when asked for

    return QdrantStore(d_emb, ids, location=where, **options)


class DenseSearcher:
    """A ``BiEncoder`` and the exact index of a corpus it embedded: query texts in, ids and scores out.

    The same interface as ``bm25.BM25.search``, so a pipeline takes either as its first stage. The corpus is
    embedded once (``bi_encoder.encode_corpus``, from the disk cache after the first time). The index lives in
    FAISS, or where ``where`` says (``make_store``: ``":memory:"``, a folder or a URL for Qdrant, with its
    ``options``), or is one built already (``store``: e.g. ``DenseRetriever.load(folder)``).

    Args:
        model: the ``BiEncoder`` that embeds the corpus and the queries.
        ds: the dataset whose corpus to search.
        cache_root: the disk cache's folder (default: ``XLAB_CACHE``).
        where: ``"faiss"``, or Qdrant's ``":memory:"``, a folder or a URL (see ``make_store``).
        store: an index built already over this corpus; then ``where`` is not used.
        **options: the store's own settings (e.g. ``index="HNSW32"``, or Qdrant's ``shards``, ``replicas``).

    Raises:
        ValueError: ``store`` holds another number of documents than the corpus.
    """

    def __init__(self, model, ds, cache_root: str | os.PathLike | None = None, where: str = "faiss", store=None,
                 **options):
        from .bi_encoder import encode_corpus

        self.model = model
        if store is not None and len(store) != len(ds.corpus):
            raise ValueError(f"the store holds {len(store)} documents but {ds.name} has {len(ds.corpus)}: build "
                             "it again from this corpus.")
        self.index = store if store is not None else make_store(
            encode_corpus(model, ds, cache_root=cache_root), list(ds.corpus), where, **options)

    def __len__(self) -> int:
        return len(self.index)

    def search(self, queries: Sequence[str], k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query text: (ids, one list per query; scores (Q, k)), best first.

        Args:
            queries: Q query texts, a list (not one string).
            k: documents per query, 1 to N.

        Returns:
            ``(ids, scores)``: Q lists of document ids, best first, and scores (Q, k) float32.

        Raises:
            TypeError: one string instead of a list.
            ValueError: ``k`` outside 1..N.
        """
        if isinstance(queries, str):
            raise TypeError("give a list of queries, not one string: e.g. search([query]).")
        q_emb = self.model.encode_queries(list(queries), show_progress=False)  # (Q, D): short texts, seconds
        return self.index.search(q_emb, k=k)


def search_empty_last(searcher, queries, k: int, empty: AbstractSet[str]) -> tuple[list[list[str]], np.ndarray]:
    """``searcher.search(queries, k)`` with the documents ``empty`` (``data.empty_documents``) placed after every
    non-empty one, their scores set to -inf, the searcher's order kept otherwise. Where every ranking of a
    first stage is built (``scored_run``, ``pipeline.Pipeline.search``), whatever the model thinks of [CLS] [SEP].

    The searcher is asked for ``k + len(empty)`` documents (at most the corpus), so a list still holds the top
    ``k`` non-empty documents when there are that many: an empty document only fills a list the non-empty ones
    cannot. Without empty documents this is ``searcher.search(queries, k)`` itself.

    >>> retriever = DenseRetriever(np.eye(3, dtype=np.float32), ids=["a", "b", "c"])
    >>> q = np.array([[0.25, 1.0, 0.5]], dtype=np.float32)                # b is the best match, and empty
    >>> retriever.search(q, k=2)[0], search_empty_last(retriever, q, k=2, empty={"b"})[0]
    ([['b', 'c']], [['c', 'a']])
    >>> ids, scores = search_empty_last(retriever, q, k=3, empty={"b"})  # the whole corpus: b comes last
    >>> ids, scores.tolist()
    ([['c', 'a', 'b']], [[0.5, 0.25, -inf]])
    """
    if not empty:
        return searcher.search(queries, k=k)
    ids, scores = searcher.search(queries, k=max(k, min(k + len(empty), len(searcher))))  # k > N: searcher's error
    out, out_scores = [], np.full((len(ids), k), -np.inf, dtype=scores.dtype)  # (Q, k)
    for row, ranking in enumerate(ids):
        order = sorted(range(len(ranking)), key=lambda j: ranking[j] in empty)[:k]  # stable: non-empty first
        out.append([ranking[j] for j in order])
        out_scores[row, : len(order)] = [-np.inf if ranking[j] in empty else scores[row, j] for j in order]
    return out, out_scores


def scored_run(searcher, ds, k: int = 100, empty: AbstractSet[str] | None = None) -> dict[str, dict[str, float]]:
    """Every query of ``ds`` searched by a first stage: the one place a run is built from a searcher.

    Args:
        searcher: any first stage with ``search(texts, k) -> (ids, scores (Q, k))``: ``bm25.BM25``,
            ``DenseSearcher``, ``hybrid.Hybrid``, ``colbert.ColbertIndex``...
        ds: the dataset whose queries are searched, over the corpus the searcher holds.
        k: documents per query.
        empty: the ids of ``ds``'s empty documents, when known (``data.empty_documents``, which warns, by default).

    Returns:
        ``{query id: {doc id: first-stage score}}``, each query's top ``k`` best first (the dict's order), empty
        documents last with score -inf (``search_empty_last``).

    >>> from xencoder_lab.bm25 import BM25
    >>> from xencoder_lab.data import Dataset
    >>> texts = {"a": "aspirin and heart attacks", "b": "measles vaccine", "c": ""}
    >>> ds = Dataset("mini", "test", {d: {"text": t} for d, t in texts.items()}, {"q1": "measles vaccines"}, {})
    >>> scored_run(BM25(list(texts.values()), list(texts)), ds, k=3, empty={"c"})
    {'q1': {'b': 0.98..., 'a': 0.0, 'c': -inf}}
    """
    qids = list(ds.queries)
    empty = empty_documents(ds) if empty is None else empty
    ids, scores = search_empty_last(searcher, [ds.queries[q] for q in qids], k, empty)
    return {q: dict(zip(ranking, row.tolist())) for q, ranking, row in zip(qids, ids, scores)}


def run_queries(searcher, ds, k: int = 100) -> dict[str, list[str]]:
    """``{query id: top-k document ids}`` for every query of ``ds``, from any first stage with
    ``search(texts, k)`` (``bm25.BM25``, ``DenseSearcher``): ``scored_run`` without the scores; empty documents
    last.

    Args:
        searcher: any first stage with ``search(texts, k) -> (ids, scores)``.
        ds: the dataset whose queries to rank.
        k: documents per query.

    Returns:
        ``{query id: [k doc ids, best first]}``.
    """
    return {q: list(ranking) for q, ranking in scored_run(searcher, ds, k).items()}


def searcher_for(model, ds, cache_root: str | os.PathLike | None = None):
    """The first stage a model gives over ``ds``: its own ``searcher(ds)`` when it has one (poly-encoder,
    ColBERT), else a ``DenseSearcher`` (a ``BiEncoder``)."""
    if hasattr(model, "searcher"):
        return model.searcher(ds, cache_root=cache_root)
    return DenseSearcher(model, ds, cache_root)


def dense_run(model, ds, k: int = 100) -> dict[str, list[str]]:
    """Rank ``ds.corpus`` for every query of ``ds`` with a ``BiEncoder`` (or a poly-encoder or ColBERT, through
    ``searcher_for``): {query id: top-k document ids}.

    Args:
        model: a ``BiEncoder``, ``PolyEncoder`` or ``ColBERT``.
        ds: the dataset: its corpus is ranked for each of its queries.
        k: documents per query.

    Returns:
        ``{query id: [k doc ids, best first]}``.
    """
    return run_queries(searcher_for(model, ds), ds, k)
