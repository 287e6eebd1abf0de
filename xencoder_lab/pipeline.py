"""Retrieve, then rerank: a first stage over the whole corpus, a cross-encoder over its top k1 (notebook 05).

    first stage    BM25, or a bi-encoder and its FAISS index       whole corpus  ->  top k1 ids
    second stage   the cross-encoder reads each (query, document)  k1 pairs      ->  top k2 ids

The syllabus's ``hybrid_search`` builds the dense index inside the search function, so every query re-encodes
the whole corpus. Here the index is built once, when the pipeline is made; a query then costs one query
encoding (or a BM25 scoring), one search and ``k1`` cross-encoder pairs. ``search`` reports each stage's time.

>>> from xencoder_lab.data import TOY_PATH, load_beir
>>> toy = load_beir("toy", path=TOY_PATH)
>>> result = Pipeline(toy, first_stage="bm25").search("Does aspirin prevent heart attacks?", k1=5, k2=2)
>>> result.ids, sorted(result.seconds)
(['d04', 'd05'], ['first_stage', 'rerank'])
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .bi_encoder import BiEncoder, encode_corpus
from .bm25 import BM25
from .cross_encoder import CrossEncoder
from .data import Dataset, document_text
from .retrieval import DenseRetriever


@dataclass
class Result:
    """The top ``k2`` ids and scores (cross-encoder logits, or first-stage scores without a reranker), the
    first stage's top ``k1`` ids in its own order, and the seconds each stage took."""

    ids: list[str]
    scores: list[float]
    first_stage_ids: list[str]
    seconds: dict[str, float]


class Pipeline:
    """A first stage (``"bm25"`` or a ``BiEncoder``) over ``ds.corpus``, then an optional ``CrossEncoder``."""

    def __init__(self, ds: Dataset, first_stage: str | BiEncoder = "bm25", reranker: CrossEncoder | None = None):
        self.ids = list(ds.corpus)
        self.texts = {doc_id: document_text(doc) for doc_id, doc in ds.corpus.items()}
        self.reranker = reranker
        if isinstance(first_stage, BiEncoder):
            self.encoder = first_stage
            self.retriever = DenseRetriever(encode_corpus(first_stage, ds), self.ids)  # once, from the cache
        elif first_stage == "bm25":
            self.encoder, self.retriever = None, BM25(list(self.texts.values()), self.ids)
        else:
            raise ValueError(f"unknown first stage {first_stage!r}: use 'bm25' or a BiEncoder.")

    def search(self, query: str, k1: int = 100, k2: int = 10) -> Result:
        """Top ``k2`` documents for ``query``, reranked from the first stage's top ``k1``."""
        if not query or not query.strip():
            raise ValueError("the query is empty: give a query with at least one word.")
        if not 1 <= k2 <= k1:
            raise ValueError(f"k2={k2} must be between 1 and k1={k1}: the reranker only sees the top k1.")
        start = time.perf_counter()
        if self.encoder is None:
            ids, scores = self.retriever.search([query], k=k1)
        else:
            ids, scores = self.retriever.search(self.encoder.encode_queries([query]), k=k1)
        first, first_scores = ids[0], [float(s) for s in scores[0]]
        middle = time.perf_counter()
        if self.reranker is None:
            top, top_scores = first[:k2], first_scores[:k2]
        else:
            logits = self.reranker.score(query, [self.texts[d] for d in first])  # (k1,)
            order = sorted(range(len(first)), key=lambda i: -logits[i])[:k2]
            top, top_scores = [first[i] for i in order], [float(logits[i]) for i in order]
        end = time.perf_counter()
        return Result(top, top_scores, first, {"first_stage": middle - start, "rerank": end - middle})
