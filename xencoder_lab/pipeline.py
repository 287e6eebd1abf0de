"""Retrieve, then rerank: a first stage over the whole corpus, a cross-encoder over its top depth (notebook 05).

    first stage    BM25, or a bi-encoder and its FAISS index       whole corpus  ->  top depth ids
    second stage   the cross-encoder reads each (query, document)  depth pairs   ->  top k ids

The syllabus's ``hybrid_search`` builds the dense index inside the search function, so every query re-encodes
the whole corpus. Here the index is built once, when the pipeline is made; a query then costs one query
encoding (or a BM25 scoring), one search and ``depth`` cross-encoder pairs. ``search`` reports each stage's time.

With ``fusion=a`` the final order is not the cross-encoder's alone but an interpolation of both stages' scores
(``fuse``): a reranker trained on one collection keeps what the first stage knows about another.

An empty document (no title, no text: ``data.empty_documents``, counted in a warning when the pipeline is made)
ranks after every non-empty one, whatever the system: the first stage's lists put it last
(``retrieval.search_empty_last``) and the reranker never reads it (its final score is -inf). A model reads it as
[CLS] [SEP] alone, which a cross-encoder can score above a real abstract.

With a ``score_cache`` (``cache.ScoreCache``, notebook 06) ``search`` looks each (query, document) pair up in
memory first and sends only the pairs it has not kept to the cross-encoder: a repeated query costs its first
stage alone. The scores are those the reranker gives without the cache, to float32 noise (about 1e-5: a pair
scored among other pairs is padded to another length), as with ``run``'s disk cache.

>>> from xencoder_lab.data import TOY_PATH, load_beir
>>> toy = load_beir("toy", path=TOY_PATH)
>>> result = Pipeline(toy, first_stage="bm25").search("Does aspirin prevent heart attacks?", depth=5, k=2)
>>> result.ids, sorted(result.seconds)
(['d04', 'd05'], ['first_stage', 'rerank'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .bi_encoder import BiEncoder
from .bm25 import BM25
from .cache import ScoreCache
from .cross_encoder import CrossEncoder, pair_key, rerank, score_candidates
from .data import Dataset, document_text, empty_documents
from .retrieval import DenseRetriever, scored_run, search_empty_last, searcher_for
from .store import QdrantStore
from .timing import Stopwatch, time_calls


@dataclass
class Result:
    """The top ``k`` ids and scores (cross-encoder logits, fused scores with ``fusion``, or first-stage scores
    without a reranker; -inf for an empty document), the first stage's top ``depth`` ids in its own order (empty
    documents last), and the seconds each stage took."""

    ids: list[str]
    scores: list[float]
    first_stage_ids: list[str]
    seconds: dict[str, float]


FUSIONS = ("min-max", "z-score", "rrf")  # the functions ``fuse`` knows (Bruch et al. 2023 compare them)
RRF_K = 60  # reciprocal-rank fusion's constant (Cormack et al. 2009)


def normalise(scores: Mapping[str, float], how: str = "min-max", k: int = RRF_K) -> dict[str, float]:
    """One list's scores on the scale ``how`` fuses them on:

        min-max   n(d) = (x(d) - min x) / (max x - min x)      in [0, 1]; 0 for every document when all are equal
        z-score   n(d) = (x(d) - mean x) / std x                std over the list (ddof 0); 0 when all are equal
        rrf       n(d) = 1 / (k + rank(d))                      rank 1 = the highest score; tied scores share the
                                                                best rank among them; k = 60

    >>> normalise({"a": 3.0, "b": 1.0, "c": 2.0})
    {'a': 1.0, 'b': 0.0, 'c': 0.5}
    >>> normalise({"a": 3.0, "b": 1.0, "c": 2.0}, "z-score")["a"] == 1.5 ** 0.5
    True
    >>> normalise({"a": 3.0, "b": 1.0, "c": 3.0}, "rrf", k=1)   # ranks 1, 3, 1
    {'a': 0.5, 'b': 0.25, 'c': 0.5}
    >>> normalise({"a": 7.0}, "z-score"), normalise({"a": 7.0, "b": 7.0})
    ({'a': 0.0}, {'a': 0.0, 'b': 0.0})
    """
    if how not in FUSIONS:
        raise ValueError(f"unknown fusion {how!r}: use one of {', '.join(FUSIONS)}.")
    if not scores:
        return {}
    if how == "min-max":
        low, high = min(scores.values()), max(scores.values())
        return {d: (x - low) / (high - low) if high > low else 0.0 for d, x in scores.items()}
    values = np.array(list(scores.values()), dtype=np.float64)  # (n,)
    if how == "z-score":
        mean, std = values.mean(), values.std()
        return {d: float((x - mean) / std) if std > 0 else 0.0 for d, x in zip(scores, values)}
    higher = len(values) - np.searchsorted(np.sort(values), values, side="right")  # (n,): how many score above
    return {d: 1.0 / (k + 1 + int(h)) for d, h in zip(scores, higher)}


def fuse(first: Mapping[str, float], second: Mapping[str, float], weight: float, how: str = "min-max",
         k: int = RRF_K) -> dict[str, float]:
    """One query's candidates scored by two stages, each list normalised (``normalise``), interpolated:

        s(d) = a * n2(d) + (1 - a) * n1(d)        a = weight: 1 is the second stage alone, 0 the first alone

    ``how`` is the normalisation: ``"min-max"`` (the default: what every existing call gets), ``"z-score"``, or
    ``"rrf"``, reciprocal-rank fusion (Cormack et al. 2009), weighted:

        s(d) = a / (k + r2(d)) + (1 - a) / (k + r1(d))     (a = 0.5: half the usual RRF sum, the same order)

    Min-max and z-score read the scores, so one stage's spread decides how far it moves the fusion; RRF reads
    ranks only, so every list moves it by the same amounts, confident or not. The result covers the union of
    the two lists (the second's documents first). A document one list lacks ranked below all of that list's:
    for min-max and z-score it gets the list's lowest score before normalising; for RRF it adds nothing from
    that list (rank infinity).

    >>> fuse({"a": 10.0, "b": 0.0, "c": 5.0}, {"a": -1.0, "b": 3.0, "c": 1.0}, weight=0.25)
    {'a': 0.75, 'b': 0.25, 'c': 0.5}
    >>> fuse({"a": 2.0, "b": 1.0}, {"b": 9.0, "c": 8.0}, weight=0.5, how="rrf", k=0)  # ranks a 1, b 2 | b 1, c 2
    {'b': 0.75, 'c': 0.25, 'a': 0.5}
    >>> fused = fuse({"a": 2.0, "b": 0.0}, {"a": 0.0, "b": 4.0}, weight=0.75, how="z-score")  # z = +-1 in both
    >>> fused == {"a": -0.5, "b": 0.5}
    True
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fusion weight {weight} must be between 0 (first stage alone) and 1 (reranker alone).")
    if how not in FUSIONS:
        raise ValueError(f"unknown fusion {how!r}: use one of {', '.join(FUSIONS)}.")
    union = list(dict.fromkeys([*second, *first]))
    if how == "rrf":
        n1, n2 = normalise(first, how, k), normalise(second, how, k)
        return {d: weight * n2.get(d, 0.0) + (1 - weight) * n1.get(d, 0.0) for d in union}

    def filled(scores: Mapping[str, float]) -> dict[str, float]:
        low = min(scores.values()) if scores else 0.0
        return {d: scores.get(d, low) for d in union}

    n1, n2 = normalise(filled(first), how), normalise(filled(second), how)
    return {d: weight * n2[d] + (1 - weight) * n1[d] for d in union}


class Pipeline:
    """A first stage (``"bm25"``, a model, or a searcher such as ``retrieval.DenseSearcher`` over a vector
    database) over ``ds.corpus``, then an optional ``CrossEncoder``, whose logits are optionally fused with the
    first stage's scores (``fusion``, see ``fuse``).

    ``search`` answers one query and times each stage; ``run`` ranks every query of ``ds`` for evaluation.
    Both go through the same first stage (``first_stage.search``: texts in, ids and scores out) and the same
    ``cross_encoder.rerank``; ``run`` scores its pairs through the disk cache (``score_candidates``), ``search``
    through ``score_cache`` when given one (the reranker's scores kept in memory, see the module docstring).

    Args:
        ds: the dataset: its corpus is searched, its queries are ``run``'s.
        first_stage: ``"bm25"``, a model with a searcher (``BiEncoder``, ``PolyEncoder``, ``ColBERT``), or a
            searcher (``search(texts, k) -> ids, scores``).
        reranker: a ``CrossEncoder``; None: the first stage alone.
        fusion: the reranker's weight in ``fuse`` (0 to 1); None: the reranker's logits alone.
        score_cache: an in-memory cache of the reranker's scores for ``search``; None: none.

    Raises:
        ValueError: an unknown first stage, or ``fusion`` / ``score_cache`` without a reranker.
        TypeError: a first stage that searches embeddings, not texts, or a reranker without ``score``.
    """

    def __init__(
        self,
        ds: Dataset,
        first_stage="bm25",
        reranker: CrossEncoder | None = None,
        fusion: float | None = None,
        score_cache: ScoreCache | None = None,
    ):
        if score_cache is not None and reranker is None:
            raise ValueError("score_cache needs a reranker: it keeps the reranker's scores.")
        if fusion is not None and reranker is None:
            raise ValueError("fusion needs a reranker: it interpolates the reranker's scores with the first stage's.")
        if fusion is not None:
            fuse({"d": 0.0}, {"d": 0.0}, fusion)  # checks the weight now rather than at the first query
        self.ds, self.fusion = ds, fusion
        self.texts = {doc_id: document_text(doc) for doc_id, doc in ds.corpus.items()}
        self.empty = empty_documents(ds)  # ranked last by every stage; the warning once, here
        self.reranker, self.score_cache = reranker, score_cache
        if isinstance(first_stage, (DenseRetriever, QdrantStore)):
            raise TypeError(f"a {type(first_stage).__name__} searches embeddings, not texts: give the pipeline "
                            "DenseSearcher(model, ds, store=it), which encodes each query with the model first.")
        if reranker is not None and not callable(getattr(reranker, "score", None)):
            raise TypeError(f"the reranker must score texts, score(query, docs) -> logits (a CrossEncoder); got a "
                            f"{type(reranker).__name__}.")
        if isinstance(first_stage, BiEncoder) or hasattr(first_stage, "searcher"):
            self.first_stage = searcher_for(first_stage, ds)  # the corpus embedded once, from the cache
        elif isinstance(first_stage, str) and first_stage == "bm25":
            self.first_stage = BM25(list(self.texts.values()), list(self.texts))
        elif hasattr(first_stage, "search") and not isinstance(first_stage, str):
            self.first_stage = first_stage  # a searcher made already, e.g. a DenseSearcher over a vector database
        else:
            raise ValueError(f"unknown first stage {first_stage!r}: use 'bm25', a model (BiEncoder, PolyEncoder, "
                             "ColBERT) or a searcher (search(texts, k) -> ids, scores).")

    def search(self, query: str, depth: int = 100, k: int = 10) -> Result:
        """Top ``k`` documents for ``query``, reranked from the first stage's top ``depth``.

        Args:
            query: one query text.
            depth: the rerank depth: candidates from the first stage (all reranked).
            k: documents returned, 1 to ``depth``.

        Returns:
            a ``Result``: the top ``k`` ids and scores, the first stage's ``depth`` ids, and each stage's seconds.

        Raises:
            ValueError: an empty query, or ``k`` out of 1..depth.
        """
        if not query or not query.strip():
            raise ValueError("the query is empty: give a query with at least one word.")
        if not 1 <= k <= depth:
            raise ValueError(f"k={k} must be between 1 and depth={depth}: the reranker only sees the top depth.")
        watch = Stopwatch()
        ids, scores = search_empty_last(self.first_stage, [query], depth, self.empty)
        first, first_scores = ids[0], dict(zip(ids[0], scores[0].tolist()))
        first_seconds = watch.seconds
        if self.reranker is None:
            top, top_scores = first[:k], [first_scores[d] for d in first[:k]]
        else:
            read = [d for d in first if d not in self.empty]
            logits = self._logits(query, [self.texts[d] for d in read])  # (len(read),): empty ones not read
            scores_q = self._final(first_scores, dict(zip(read, logits.tolist())))
            top = rerank({"q": first}, {"q": scores_q}, depth=depth)["q"][:k]
            top_scores = [scores_q[d] for d in top]
        seconds = {"first_stage": first_seconds, "rerank": watch.seconds - first_seconds}
        return Result(top, top_scores, first, seconds)

    def stage_seconds(self, queries: Sequence[str], depth: int = 100, k: int = 10) -> dict[str, np.ndarray]:
        """Seconds of each stage for each query searched alone (after one unmeasured warm-up search,
        ``timing.time_calls``), as a user meets them: ``{"first_stage": (Q,), "rerank": (Q,)}``.

        Args:
            queries: Q query texts.
            depth: the rerank depth: candidates from the first stage.
            k: documents returned.

        Returns:
            ``{"first_stage": (Q,), "rerank": (Q,)}`` float arrays of seconds.
        """
        searches = time_calls(lambda query: self.search(query, depth=depth, k=k), queries)
        timings = [result.seconds for result, _ in searches]  # the stages timed inside each search
        return {stage: np.array([t[stage] for t in timings]) for stage in timings[0]}

    def _logits(self, query: str, docs: Sequence[str]) -> np.ndarray:
        """The reranker's logits (depth,) for one query's candidates; with a score cache, only the pairs it lacks
        are scored."""
        if self.score_cache is None:
            return self.reranker.score(query, docs)
        keys = [pair_key(query, doc) for doc in docs]
        return self.score_cache.get_many(keys, lambda rows: self.reranker.score(query, [docs[i] for i in rows]))

    def _final(self, first: Mapping[str, float], logits: Mapping[str, float]) -> dict[str, float]:
        """One query's final scores over its candidates ``first`` (their first-stage scores): the reranker's
        ``logits``, or their fusion with the first stage's scores, normalised over the documents the reranker
        read; -inf for the empty documents it did not read."""
        final = logits if self.fusion is None else fuse({d: first[d] for d in logits}, logits, self.fusion)
        return {d: final.get(d, -np.inf) for d in first}

    def run(self, depth: int = 100, k: int = 100, show_progress=None) -> dict[str, list[str]]:
        """``{query id: ranked ids}`` for every query of ``ds``, for evaluation: the first stage's top ``k``,
        of which the top ``depth`` are reranked (``depth <= k``; the rest keep their first-stage order); empty
        documents last.

        Args:
            depth: the rerank depth: documents reranked per query, 1 to ``k``.
            k: documents ranked per query.
            show_progress: a progress bar while scoring pairs; ``None``: only for long runs.

        Returns:
            ``{query id: [k doc ids, best first]}``.

        Raises:
            ValueError: ``depth`` out of 1..k.
        """
        return self.runs([depth], k, show_progress)[depth]

    def runs(self, depths: Sequence[int], k: int = 100, show_progress=None) -> dict[int, dict[str, list[str]]]:
        """``run`` at each rerank depth of ``depths``, from one first-stage run and one scoring of the deepest
        candidates: ``{depth: {query id: ranked ids}}``. A shallower depth reranks the top of the same first
        stage, with fusion normalised over the documents it reads, so each run equals ``run(depth)``.

        Args:
            depths: rerank depths, each 1 to ``k``.
            k: documents ranked per query.
            show_progress: a progress bar while scoring pairs; ``None``: only for long runs.

        Returns:
            ``{depth: {query id: [k doc ids, best first]}}``.

        Raises:
            ValueError: a depth out of 1..k.
        """
        for depth in depths:
            if not 1 <= depth <= k:
                raise ValueError(f"depth={depth} must be between 1 and k={k}: only the first stage's top k can be "
                                 "reranked.")
        first = scored_run(self.first_stage, self.ds, k, self.empty)  # {query id: {doc id: score}}, best first
        run = {q: list(scores) for q, scores in first.items()}
        if self.reranker is None:
            return {depth: {q: list(ids) for q, ids in run.items()} for depth in depths}  # one copy a depth
        deepest = max(depths)
        read = {q: [d for d in ranking[:deepest] if d not in self.empty] for q, ranking in run.items()}
        logits = score_candidates(self.reranker, self.ds, [read], depth=deepest, show_progress=show_progress)
        out = {}
        for depth in depths:
            final = {}
            for q, ranking in run.items():
                top = set(ranking[:depth])
                read_q = {d: x for d, x in logits.get(q, {}).items() if d in top}  # {}: every candidate empty
                final[q] = self._final({d: first[q][d] for d in ranking[:depth]}, read_q)
            out[depth] = rerank(run, final, depth=depth)
        return out
