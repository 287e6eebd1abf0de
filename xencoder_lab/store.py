"""Where a first stage's vectors live: one interface, FAISS in process or a vector database (notebook 09).

Every store answers the same two questions as ``retrieval.DenseRetriever``:

    len(store)                      how many documents it holds
    store.search(q_emb, k)          (ids, one list per query; scores (Q, k)), best first, scores[i, r] = q_i . d

FAISS (``DenseRetriever``) keeps the index in this process's memory: the default, and the fastest on one
machine. A corpus that outgrows one machine moves to a vector database that shards the collection across
machines and replicates each shard, behind the same interface: ``QdrantStore``. Its Python client runs the same
code three ways: ``location=":memory:"`` (embedded, in this process: tests and notebooks), a folder (embedded,
saved on disk), or a server or cluster's URL (``"http://localhost:6333"``), where ``shards`` and ``replicas`` set
how the collection is spread. The embedded mode searches exactly, like ``IndexFlatIP``; a server builds an HNSW
graph (``exact=True`` asks it for exact search).

Qdrant also keeps several vectors per document and scores them with MaxSim (``multivector=True``): a ColBERT
index in the database, each document one point holding its (L_d, dim) token vectors.

``retrieval.make_store`` picks one by ``where``; this module needs nothing of ``retrieval``.

>>> d_emb = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
>>> store = QdrantStore(d_emb, ["a", "b", "c"], location=":memory:")
>>> ids, scores = store.search(np.array([[0.0, 1.0]], dtype=np.float32), k=2)
>>> len(store), ids, scores.round(2)
(3, [['c', 'b']], array([[1. , 0.8]], dtype=float32))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .extras import require


class Store(Protocol):
    """What a pipeline's first stage needs from the place its vectors live."""

    def __len__(self) -> int: ...

    def search(self, q_emb, k: int = 100) -> tuple[list[list[str]], np.ndarray]: ...


class QdrantStore:
    """A Qdrant collection of ``vectors`` with their ``ids``, searched by inner product (``Distance.DOT``: the
    vectors are normalised already, so it is the cosine, and the scores are FAISS's).

    ``vectors``: (N, D) float32, or with ``multivector=True`` a sequence of N (L_d, D) token matrices, scored
    by MaxSim: s(q, d) = sum_i max_j q_i . d_j. Each point's id is its row; the document id rides in its payload.
    A collection that already exists is used as it is when it holds the same ids, and is never overwritten
    unless ``overwrite=True``; ``vectors=None`` opens an existing collection.

    >>> store = QdrantStore([np.eye(2, dtype=np.float32), np.full((1, 2), 0.5, dtype=np.float32)], ["a", "b"],
    ...                     multivector=True)
    >>> store.search([np.eye(2, dtype=np.float32)], k=2)  # a: 1 + 1, b: 0.5 + 0.5
    ([['a', 'b']], array([[2., 1.]], dtype=float32))
    """

    def __init__(self, vectors, ids: Sequence[str] | None = None, location: str | os.PathLike = ":memory:",
                 collection: str = "documents", multivector: bool = False, shards: int | None = None,
                 replicas: int | None = None, exact: bool = False, batch_size: int = 256, overwrite: bool = False):
        models = require("qdrant_client.models", "scale", "QdrantStore")  # the client: imported only here
        self.client, self.location = _client(location), str(location)
        self.collection, self.multivector = collection, multivector
        self.params = models.SearchParams(exact=True) if exact else None
        if vectors is None:
            if not self.client.collection_exists(collection):
                raise LookupError(f"no collection {collection!r} at {self.location}: create it with vectors first.")
            return
        ids = [str(doc_id) for doc_id in ids]
        dim = self._check(vectors, ids)
        if self.client.collection_exists(collection):
            if overwrite:
                self.client.delete_collection(collection)
            elif self._stored_ids() == ids:
                return  # already there, e.g. an on-disk collection made by an earlier run
            else:
                self.client.close()  # an embedded folder stays locked while a client holds it
                raise FileExistsError(f"collection {collection!r} at {self.location} holds other documents: pass "
                                      "overwrite=True to replace it, or another collection name.")
        comparator = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM) if multivector else None
        self.client.create_collection(
            collection, shard_number=shards, replication_factor=replicas,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.DOT, multivector_config=comparator),
        )
        rows = [v.tolist() for v in vectors] if multivector else np.ascontiguousarray(vectors, dtype=np.float32)
        self.client.upload_collection(collection, vectors=rows, ids=list(range(len(ids))),
                                      payload=[{"doc_id": doc_id} for doc_id in ids], batch_size=batch_size)

    def _check(self, vectors, ids: list[str]) -> int:
        """The vectors' dimension, after checking there is one vector (or matrix) per id and none is empty."""
        if len(vectors) == 0:
            raise ValueError("the corpus is empty: a store needs at least one document's vectors.")
        if len(vectors) != len(ids):
            raise ValueError(f"got {len(vectors)} documents' vectors but {len(ids)} ids; give one id per document.")
        if self.multivector:
            if any(np.ndim(v) != 2 or len(v) == 0 for v in vectors):
                raise ValueError("multivector=True needs one (L_d, D) matrix per document, with L_d >= 1.")
            return int(np.shape(vectors[0])[1])
        if np.ndim(vectors) != 2:
            raise ValueError(f"vectors must be (N, D), got shape {np.shape(vectors)}; multivector=True for ColBERT.")
        return int(np.shape(vectors)[1])

    def _stored_ids(self) -> list[str]:
        """The collection's document ids in row order (read back in pages)."""
        found, offset = {}, None
        while True:
            points, offset = self.client.scroll(self.collection, limit=10_000, offset=offset, with_payload=True)
            found.update({int(p.id): p.payload["doc_id"] for p in points})
            if offset is None:
                return [found[i] for i in sorted(found)]

    def __len__(self) -> int:
        return self.client.count(self.collection, exact=True).count

    def search(self, q_emb, k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query: ``q_emb`` (Q, D), or with ``multivector`` Q matrices (L_q, D).
        Returns (ids, one list per query; scores float32 (Q, k)), best first, like ``DenseRetriever.search``."""
        if not 1 <= k <= len(self):
            raise ValueError(f"k={k} but the collection has {len(self)} documents: use 1 <= k <= {len(self)}.")
        if len(q_emb) == 0:
            return [], np.zeros((0, k), dtype=np.float32)
        models = require("qdrant_client.models", "scale", "QdrantStore")
        requests = [models.QueryRequest(query=np.asarray(q, dtype=np.float32).tolist(), limit=k, with_payload=True,
                                        params=self.params) for q in q_emb]
        answers = self.client.query_batch_points(self.collection, requests=requests)
        ids = [[p.payload["doc_id"] for p in answer.points] for answer in answers]
        scores = np.full((len(answers), k), -np.inf, dtype=np.float32)  # (Q, k)
        for row, answer in zip(scores, answers):
            row[: len(answer.points)] = [p.score for p in answer.points]
        return ids, scores


def _client(location: str | os.PathLike):
    """A client for ``":memory:"`` (embedded), a URL (a server or cluster), or a folder (embedded, on disk)."""
    QdrantClient = require("qdrant_client", "scale", "QdrantStore").QdrantClient
    location = str(location)
    if location == ":memory:":
        return QdrantClient(location=":memory:")
    if location.startswith(("http://", "https://")):
        return QdrantClient(url=location)
    Path(location).mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=location)
