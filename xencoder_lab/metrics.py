"""Ranking metrics: MRR@k, Recall@k and nDCG@k, per query and averaged (built in notebook 01).

A *run* maps each query id to its ranked list of document ids, best first. *qrels* map each query id to
``{doc id: grade}``; a document is relevant when its grade is above 0. Every query in qrels counts in an
average, also one missing from the run (it scores 0), as in trec_eval and BEIR.

    RR@k      = 1 / rank of the first relevant document in the top k   (0 if none)
    Recall@k  = |relevant in top k| / |relevant|
    DCG@k     = sum_{i=1..k} grade_i / log2(i + 1)                     (linear gain, as trec_eval and BEIR)
    nDCG@k    = DCG@k / DCG@k of the ideal ranking (all judged documents sorted by grade)

>>> qrels = {"q": {"a": 2, "b": 1}}
>>> run = {"q": ["x", "a", "b"]}
>>> reciprocal_rank(run["q"], qrels["q"], k=10)
0.5
>>> recall(run["q"], qrels["q"], k=2)
0.5
>>> round(ndcg(run["q"], qrels["q"], k=10), 4)    # (2/log2(3) + 1/log2(4)) / (2/log2(2) + 1/log2(3))
0.6697
>>> evaluate(run, qrels, ["mrr@10", "recall@2"])
{'mrr@10': 0.5, 'recall@2': 0.5}
"""

from __future__ import annotations

import math
import random
from typing import Callable, Sequence

Ranking = Sequence[str]  # document ids, best first
Judgments = dict[str, int]  # doc id -> grade


def reciprocal_rank(ranking: Ranking, judged: Judgments, k: int = 10) -> float:
    """1 / rank of the first relevant document among the top ``k``, or 0.0 when there is none."""
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if judged.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


def recall(ranking: Ranking, judged: Judgments, k: int = 100) -> float:
    """The share of the relevant documents found in the top ``k``."""
    relevant = {doc_id for doc_id, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def dcg(grades: Sequence[float]) -> float:
    """Discounted cumulative gain of grades in rank order: sum of grade_i / log2(i + 1), i from 1.

    >>> dcg([1, 1])    # 1/log2(2) + 1/log2(3)
    1.6309297535714575
    """
    return sum(grade / math.log2(i + 1) for i, grade in enumerate(grades, start=1))


def ndcg(ranking: Ranking, judged: Judgments, k: int = 10) -> float:
    """DCG of the top ``k`` divided by the DCG of the best possible top ``k``.

    Args:
        ranking: document ids, best first.
        judged: ``{doc id: grade}`` for one query; grades above 0 are relevant, unjudged documents count 0.
        k: the cut-off.

    Returns:
        nDCG@k in [0, 1]; 0.0 when no judged document is relevant.
    """
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([max(judged.get(doc_id, 0), 0) for doc_id in ranking[:k]]) / ideal


METRICS: dict[str, Callable[[Ranking, Judgments, int], float]] = {
    "mrr": reciprocal_rank,
    "recall": recall,
    "ndcg": ndcg,
}


def _parse(metric: str) -> tuple[Callable[[Ranking, Judgments, int], float], int]:
    name, _, k = metric.lower().partition("@")
    if name not in METRICS or not k.isdigit() or int(k) < 1:
        raise ValueError(f"unknown metric {metric!r}: use one of mrr@K, recall@K, ndcg@K with K >= 1.")
    return METRICS[name], int(k)


def per_query(run: dict[str, Ranking], qrels: dict[str, Judgments], metric: str) -> dict[str, float]:
    """``metric`` (e.g. ``"ndcg@10"``) for every query in ``qrels``; queries absent from ``run`` score 0.

    Args:
        run: ``{query id: [doc ids, best first]}``.
        qrels: ``{query id: {doc id: grade}}``.
        metric: ``"mrr@K"``, ``"recall@K"`` or ``"ndcg@K"``.

    Returns:
        ``{query id: score}`` for every query in ``qrels``.

    Raises:
        ValueError: an unknown metric.
    """
    fn, k = _parse(metric)
    return {qid: fn(run.get(qid, []), judged, k) for qid, judged in qrels.items()}


def evaluate(
    run: dict[str, Ranking],
    qrels: dict[str, Judgments],
    metrics: Sequence[str] = ("mrr@10", "recall@100", "ndcg@10"),
) -> dict[str, float]:
    """The mean of each metric over all queries in ``qrels``.

    Args:
        run: ``{query id: [doc ids, best first]}``; a query missing from it scores 0.
        qrels: ``{query id: {doc id: grade}}``.
        metrics: names like ``"ndcg@10"`` (see ``per_query``).

    Returns:
        ``{metric: mean over the queries}``, in the order of ``metrics``.

    Raises:
        ValueError: empty ``qrels`` or an unknown metric.
    """
    if not qrels:
        raise ValueError("qrels are empty: there is nothing to evaluate.")
    return {m: sum(values.values()) / len(values) for m in metrics for values in [per_query(run, qrels, m)]}


def paired_bootstrap(
    a: dict[str, float], b: dict[str, float], samples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Is system b better than system a? Paired bootstrap over queries of the per-query difference b - a.

    Resample the queries with replacement ``samples`` times; the 2.5th and 97.5th percentiles of the mean
    difference give a 95% interval. An interval above 0 means b's gain is larger than the noise of which
    queries happened to be in the test set. ``p`` is the share of resamples where b did not beat a.

    Args:
        a: ``{query id: score}`` of system a (e.g. from ``per_query``).
        b: the same for system b, over the same queries.
        samples: number of bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        ``{"diff": mean of b - a, "low": 2.5th percentile, "high": 97.5th percentile, "p": share with no gain}``.

    Raises:
        ValueError: ``a`` and ``b`` cover different queries, or none.

    >>> a = {f"q{i}": 0.5 for i in range(50)}
    >>> b = {q: v + 0.1 for q, v in a.items()}
    >>> result = paired_bootstrap(a, b)
    >>> round(result["diff"], 3), round(result["low"], 3) > 0, result["p"]
    (0.1, True, 0.0)
    """
    if set(a) != set(b) or not a:
        raise ValueError("compare the same, non-empty set of queries (use per_query on the same qrels).")
    qids = sorted(a)
    diffs = [b[q] - a[q] for q in qids]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(samples))
    return {
        "diff": sum(diffs) / len(diffs),
        "low": means[int(0.025 * samples)],
        "high": means[int(0.975 * samples) - 1],
        "p": sum(m <= 0 for m in means) / samples,
    }


def compare_scores(a: dict[str, float], b: dict[str, float], samples: int = 10_000, seed: int = 0) -> dict:
    """``paired_bootstrap`` of per-query scores b against a, rounded for reading: the mean gain, its 95% interval
    and the share of resamples with no gain (``< 1e-4`` when not one of 10,000 had none).

    Args:
        a: ``{query id: score}`` of the baseline.
        b: ``{query id: score}`` of the system compared, over the same queries.
        samples: number of bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        ``{"gain": float, "95% interval": (low, high), "share of resamples with no gain": str}``.

    Raises:
        ValueError: ``a`` and ``b`` cover different queries, or none.

    >>> compare_scores({"q1": 0.5, "q2": 0.2}, {"q1": 0.7, "q2": 0.4}, samples=1000)
    {'gain': 0.2, '95% interval': (0.2, 0.2), 'share of resamples with no gain': '< 0.001'}
    """
    result = paired_bootstrap(a, b, samples, seed)
    no_gain = f"< {1 / samples:g}" if result["p"] == 0 else f"{result['p']:.4f}"
    return {"gain": round(result["diff"], 3), "95% interval": (round(result["low"], 3), round(result["high"], 3)),
            "share of resamples with no gain": no_gain}


def compare(
    run_a: dict[str, Ranking],
    run_b: dict[str, Ranking],
    qrels: dict[str, Judgments],
    metric: str = "ndcg@10",
    samples: int = 10_000,
    seed: int = 0,
) -> dict:
    """``compare_scores`` of ``metric`` per query, run b against run a.

    Args:
        run_a: the baseline's ``{query id: [doc ids, best first]}``.
        run_b: the compared system's run.
        qrels: ``{query id: {doc id: grade}}``; its queries are the ones compared.
        metric: e.g. ``"ndcg@10"`` (see ``per_query``).
        samples: number of bootstrap resamples.
        seed: seed of the resampling.

    Returns:
        the dict of ``compare_scores``: the gain of b over a, its 95% interval, the share with no gain.

    >>> qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    >>> compare({"q1": ["d0", "d1"], "q2": ["d0", "d2"]}, {"q1": ["d1"], "q2": ["d2"]}, qrels, samples=1000)
    {'gain': 0.369, '95% interval': (0.369, 0.369), 'share of resamples with no gain': '< 0.001'}
    """
    return compare_scores(per_query(run_a, qrels, metric), per_query(run_b, qrels, metric), samples, seed)
