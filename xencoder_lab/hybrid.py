"""Hybrid retrieval: a sparse first stage (BM25) and a dense one (a bi-encoder) fused (notebook 05).

BM25 matches the words a query shares with a document; a bi-encoder matches what they mean. They fail on
different queries, so their fusion can beat both, with no training; in notebook 05 (section 6) it does, most of all
on claims whose answers training never cited and on another field. Each stage searches its top
``depth``; over the union of the two lists a document scores

    s(d) = b * n_sparse(d) + (1 - b) * n_dense(d)        n: min-max over the union (``pipeline.fuse``)

with ``b = weight``; a document one list lacks gets that list's lowest score (it ranked below all of them).
``fusion`` chooses n (``pipeline.FUSIONS``): ``"min-max"`` (the default), ``"z-score"``, or ``"rrf"``,
reciprocal-rank fusion, which reads ranks alone:

    s(d) = b / (60 + r_sparse(d)) + (1 - b) / (60 + r_dense(d))      a list that lacks d adds nothing

What makes a fusion hold up when one part is weak is what it reads. Min-max stretches every list to [0, 1]
whatever it knows, so a stage with no idea still gives its top document the full score of the other's; RRF
gives every list the same credit at each rank, confident or not. Z-score measures each score against its own
list's spread: a good list's best matches stand out (on SciFact and CACM the median top-1 of a top 100 is 3.5
to 5.4 standard deviations above its list's mean, BM25's and the bi-encoders' alike), noise's never do (at most
1.7 for uniform scores), so the good list's confident hits keep their place. ``benchmarks/fusion.py`` measures
the three at several weights on the protocol's columns, and with a weak list (BM25 reading three words of the
query, or pure noise) in either slot: with noise at b = 0.5, z-score stays within 0.013 nDCG@10 of the good list
alone on SciFact's validation claims, min-max falls 0.10 to 0.33 and RRF more; with the real lists it is as good
as min-max (within 0.01 on validation, above on SciFact test, 0.01 below on CACM) and above RRF in domain (RRF is
0.015 above on CACM, inside the noise of 52 queries). The command's ``hybrid`` is z-score at b = 0.5
(``cli.HYBRIDS``); the class keeps min-max as its default, so the notebooks' figures stand.
``Hybrid`` has the first stages' ``search(texts, k)``, so a ``Pipeline`` takes it as its first stage, and its
reranker's logits can be fused with ``s`` in turn (``Pipeline(..., fusion=a)``).

>>> from xencoder_lab.data import TOY_PATH, load_beir
>>> from xencoder_lab.bi_encoder import BiEncoder
>>> toy = load_beir("toy", path=TOY_PATH)
>>> hybrid = Hybrid.over(toy, BiEncoder(), weight=0.5, depth=5)
>>> ids, scores = hybrid.search(["Does aspirin prevent heart attacks?"], k=3)
>>> ids[0][0], scores.shape
('d04', (1, 3))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .bm25 import BM25
from .data import Dataset, document_text
from .pipeline import fuse
from .retrieval import searcher_for


class Hybrid:
    """``sparse`` and ``dense`` first stages (anything with ``search(texts, k)`` and ``len``), fused with weight
    ``weight`` on the sparse one (0: dense alone, 1: sparse alone) over the union of their top ``depth``, by the
    function ``fusion`` (``pipeline.fuse``: ``"min-max"``, ``"z-score"`` or ``"rrf"``)."""

    def __init__(self, sparse, dense, weight: float = 0.5, depth: int = 100, fusion: str = "min-max"):
        fuse({"d": 0.0}, {"d": 0.0}, weight, fusion)  # checks the weight and the function now, not at a query
        if len(sparse) != len(dense):
            raise ValueError(f"the sparse stage indexes {len(sparse)} documents and the dense one {len(dense)}: "
                             "build both over the same corpus.")
        if depth < 1:
            raise ValueError(f"depth={depth}: each stage must return at least one document (e.g. depth=100).")
        self.sparse, self.dense, self.weight, self.depth, self.fusion = sparse, dense, weight, depth, fusion

    @classmethod
    def over(cls, ds: Dataset, model, weight: float = 0.5, depth: int = 100, cache_root=None,
             fusion: str = "min-max") -> "Hybrid":
        """BM25 over ``ds.corpus`` and ``model``'s searcher over the same corpus (embedded once, cached)."""
        texts = {doc_id: document_text(doc) for doc_id, doc in ds.corpus.items()}
        return cls(BM25(list(texts.values()), list(texts)), searcher_for(model, ds, cache_root), weight, depth,
                   fusion)

    def __len__(self) -> int:
        return len(self.sparse)

    def search(self, queries: Sequence[str], k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query by fused score: (ids, one list per query; scores (Q, k)), best
        first. Each stage returns ``max(k, depth)`` documents (the whole corpus, if smaller)."""
        if not 1 <= k <= len(self):
            raise ValueError(f"k={k} but the corpus has {len(self)} documents: use 1 <= k <= {len(self)}.")
        n = min(max(k, self.depth), len(self))
        sparse_ids, sparse_scores = self.sparse.search(queries, k=n)  # (Q, n)
        dense_ids, dense_scores = self.dense.search(queries, k=n)  # (Q, n)
        ids, scores = [], np.zeros((len(queries), k), dtype=np.float32)
        for row in range(len(queries)):
            sparse = dict(zip(sparse_ids[row], sparse_scores[row].tolist()))
            dense = dict(zip(dense_ids[row], dense_scores[row].tolist()))
            union = list(dict.fromkeys(dense_ids[row] + sparse_ids[row]))
            fused = fuse(dense, sparse, self.weight, self.fusion)  # over the union; a missing one: see fuse
            top = sorted(union, key=lambda d: -fused[d])[:k]  # stable: ties keep the dense stage's order
            ids.append(top)
            scores[row] = [fused[d] for d in top]
        return ids, scores
