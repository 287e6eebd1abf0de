"""Checks for notebook 05's exercises: reranking the top ``depth`` of a run (against ``cross_encoder.rerank``), min-max
fusion of two stages' scores per query (``pipeline.fuse``), and the quality of reranking a pool merged from two
first stages (a read-off)."""

from __future__ import annotations

from xencoder_lab import metrics
from xencoder_lab.cross_encoder import rerank, score_candidates
from xencoder_lab.exercises import Case, check, check_answer, screen
from xencoder_lab.pipeline import fuse

POOL = 50  # exercise 3: each first stage's top 50 go into the pool


def check_rerank_top(rerank_top) -> bool | None:
    """Exercise 1: ``rerank_top(run, scores, depth)``: each query's top ``depth`` by score, the rest after them."""
    ranking = ["d1", "d2", "d3", "d4", "d5"]
    tail_below = {"d1": 1.0, "d2": 3.0, "d3": 0.5, "d4": 0.1, "d5": 0.3}  # the tail scored too, out of order
    best_at_depth = {"d1": 0.0, "d2": 1.0, "d3": 2.0, "d4": 5.0}  # rank depth is the best, depth + 1 better still
    cases = [
        Case("one query reranked whole", ({"q1": ranking[:3]}, {"q1": {"d1": 0.5, "d2": 2.0, "d3": -1.0}}, 3),
             hint="order each query's candidates by score, highest first"),
        Case("documents below the rerank depth", ({"q1": ranking}, {"q1": tail_below}, 3),
             hint="only the top `depth` candidates are reordered: the documents below them stay, after them, in their "
                  "first-stage order"),
        Case("the best candidate at rank `depth`", ({"q1": ranking}, {"q1": best_at_depth}, 3),
             hint="the top `depth` is ranking[:depth]: rank `depth` is reranked, rank `depth` + 1 is not"),
        Case("tied scores", ({"q1": ["d2", "d3", "d1", "d4"]}, {"q1": {"d2": 1.0, "d3": 1.0, "d1": 1.0}}, 3),
             hint="sort by score alone with a stable sort: tied candidates keep their first-stage order (not their "
                  "ids' order, not reversed)"),
        Case("a query with fewer than `depth` candidates",
             ({"q1": ranking, "q2": ["d8", "d7"]}, {"q1": best_at_depth, "q2": {"d7": 1.0, "d8": 0.0}}, 3),
             hint="rerank every query of the run; a query with fewer than `depth` candidates has all of them reranked"),
    ]
    return check("Exercise 1 (rerank the top `depth`)", rerank_top, rerank, cases)


def package_fuse_min_max(first: dict[str, dict[str, float]], second: dict[str, dict[str, float]],
                         weight: float) -> dict[str, dict[str, float]]:
    """``pipeline.fuse`` (min-max) on each query's candidates: ``{query id: {doc id: fused score}}``.

    >>> package_fuse_min_max({"q": {"a": 10.0, "b": 0.0}}, {"q": {"a": 0.0, "b": 4.0}}, weight=0.25)
    {'q': {'a': 0.75, 'b': 0.25}}
    """
    return {q: fuse(first[q], second[q], weight) for q in first}


def check_fuse_min_max(fuse_min_max) -> bool | None:
    """Exercise 2: ``fuse_min_max(first, second, weight)``, ``a * n(second) + (1 - a) * n(first)`` with ``n`` the
    min-max over each query's candidates."""
    bm25 = {"q1": {"d1": 12.0, "d2": 4.0, "d3": 8.0}}
    logits = {"q1": {"d1": -2.0, "d2": 6.0, "d3": 0.0}}
    cases = [
        Case("one query at a = 0.5", (bm25, logits, 0.5),
             hint="min-max each stage's scores over the query's candidates, (x - min) / (max - min), then "
                  "a * second + (1 - a) * first"),
        Case("one query at a = 0.25", (bm25, logits, 0.25),
             hint="the weight a goes on the second stage (the cross-encoder): a = 1 is the cross-encoder alone, "
                  "a = 0 the first stage alone"),
        Case("two queries on different scales",
             (bm25 | {"q2": {"d4": 30.0, "d5": 25.0}}, logits | {"q2": {"d4": 9.0, "d5": 11.0}}, 0.5),
             hint="normalise each query over its own candidates: one query's scores must not change another's"),
        Case("a query whose logits are all equal",
             (bm25 | {"q2": {"d4": 30.0, "d5": 25.0}}, logits | {"q2": {"d4": 3.0, "d5": 3.0}}, 0.5),
             hint="when a stage gives every candidate of a query the same score, max - min is 0: min-max gives each "
                  "0.0 (no division by zero)"),
    ]
    return check("Exercise 2 (fusion, per query)", fuse_min_max, package_fuse_min_max, cases)


def check_union_pool(answer: float | None, cross, test, runs: dict[str, dict[str, list[str]]]) -> bool | None:
    """Exercise 3: nDCG@10 on ``test`` of ``cross`` reranking, for every claim, the union of the top 50 of
    ``runs["BM25"]`` and of ``runs["fine-tuned bi-encoder"]``. A value that cannot be an nDCG@10 is turned away
    before any pair is scored (the logits come from the disk cache)."""
    title = "Exercise 3 (a pool from two first stages)"
    verdict = screen(title, answer)
    if verdict is not True:
        return verdict
    bm25, dense = runs["BM25"], runs["fine-tuned bi-encoder"]
    pool = {q: list(dict.fromkeys(bm25[q][:POOL] + dense[q][:POOL])) for q in test.queries}
    logits = score_candidates(cross, test, [pool], depth=2 * POOL, show_progress=False)
    expected = metrics.evaluate(rerank(pool, logits, 2 * POOL), test.qrels, ["ndcg@10"])["ndcg@10"]
    return check_answer(title, answer, expected, 1e-3,
                        f"Pool both top {POOL}s without duplicates, rerank the whole pool (depth {2 * POOL}) and "
                        "evaluate nDCG@10 on test.qrels")
