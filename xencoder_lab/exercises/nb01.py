"""Checks for notebook 01's exercises: recall@k and nDCG@k for one query, against ``metrics``."""

from __future__ import annotations

from functools import partial

from xencoder_lab import metrics
from xencoder_lab.exercises import Case, check

RANKING = ["d3", "d7", "d1", "d9", "d2", "d4", "d5", "d6", "d8", "d10", "d11", "d12"]


def check_recall_at_k(recall_at_k) -> bool | None:
    """Exercise 1: ``recall_at_k(ranking, judged, k)``, the share of the relevant documents in the top ``k``."""
    cases = [
        Case("two of three relevant in the top 5", (RANKING, {"d3": 1, "d1": 1, "d12": 1}, 5),
             hint="count the relevant ids among ranking[:k] and divide by the number of relevant ids"),
        Case("a relevant document exactly at rank k", (RANKING, {"d2": 1, "d4": 1}, 5),
             hint="the top k is ranking[:k]: rank k is in, rank k + 1 is out"),
        Case("a judged document with grade 0", (RANKING, {"d3": 1, "d7": 0, "d8": 1}, 5),
             hint="a grade of 0 means judged not relevant: leave it out of the relevant set"),
        Case("a query with no relevant document", (RANKING, {"d7": 0}, 5),
             hint="with nothing relevant, recall is 0.0 (not a division by zero)"),
    ]
    return check("Exercise 1 (recall@k)", recall_at_k, metrics.recall, cases)


def check_ndcg_at_10(ndcg_at_10) -> bool | None:
    """Exercise 2: ``ndcg_at_10(ranking, judged)`` with graded relevance, cut at 10."""
    cases = [
        Case("one relevant document at rank 1", (RANKING, {"d3": 1}),
             hint="a single relevant document at rank 1 is a perfect ranking: 1.0"),
        Case("one relevant document at rank 3", (RANKING, {"d1": 1}),
             hint="the discount at rank i is log2(i + 1): rank 1 divides by 1, rank 3 by 2"),
        Case("grades 1 and 2", (RANKING, {"d7": 1, "d1": 2}),
             hint="the gain is the grade itself, and the ideal ranking puts grade 2 first"),
        Case("a relevant document at rank 11", (RANKING, {"d3": 1, "d11": 1}),
             hint="only the top 10 counts, in the ranking and in the ideal (the ideal has min(10, #relevant) gains)"),
        Case("twelve relevant documents", (RANKING, {d: 1 for d in RANKING}),
             hint="the ideal DCG is also cut at 10: with 12 relevant documents, 10 relevant in the top 10 scores 1.0"),
        Case("a judged document with grade 0", (RANKING, {"d3": 0, "d9": 1}),
             hint="grade 0 adds no gain, and it is not part of the ideal ranking"),
        Case("no relevant document", (RANKING, {"d5": 0}),
             hint="with no relevant document the ideal DCG is 0: return 0.0"),
    ]
    return check("Exercise 2 (nDCG@10)", ndcg_at_10, partial(metrics.ndcg, k=10), cases)


def check_titles(answer: float | None, test) -> bool | None:
    """Exercise 3: nDCG@10 of BM25 (the notebook's defaults) on SciFact's test claims with abstracts indexed
    without their titles; ``test`` is the notebook's dataset (its fast subset in CI)."""
    from xencoder_lab import bm25
    from xencoder_lab.exercises import check_answer

    if answer is None:
        return check_answer("Exercise 3 (titles)", None, 0.0, 0.0, "")
    doc_ids = list(test.corpus)
    retriever = bm25.BM25([test.corpus[d]["text"] for d in doc_ids], doc_ids)
    query_ids = list(test.queries)
    ranked, _ = retriever.search([test.queries[q] for q in query_ids], k=10)
    expected = metrics.evaluate(dict(zip(query_ids, ranked)), test.qrels, ["ndcg@10"])["ndcg@10"]
    return check_answer("Exercise 3 (titles)", answer, expected, 1e-3,
                        "index test.corpus[d]['text'] only (no title), search every test claim, evaluate nDCG@10")
