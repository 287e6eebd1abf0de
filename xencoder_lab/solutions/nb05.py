"""Solutions to notebook 05's exercises."""

from __future__ import annotations


def rerank_top(run: dict[str, list[str]], scores: dict[str, dict[str, float]], depth: int) -> dict[str, list[str]]:
    """Exercise 1: for each query, ``ranking[:depth]`` sorted by score (highest first; ``sorted`` is stable, so ties
    keep their first-stage order), then ``ranking[depth:]`` as it was."""
    reranked = {}
    for q, ranking in run.items():
        top = sorted(ranking[:depth], key=lambda d: scores[q][d], reverse=True)
        reranked[q] = top + ranking[depth:]
    return reranked


def fuse_min_max(first: dict[str, dict[str, float]], second: dict[str, dict[str, float]],
                 weight: float) -> dict[str, dict[str, float]]:
    """Exercise 2: for each query, s(d) = a * n(second)(d) + (1 - a) * n(first)(d), ``n`` the min-max over that
    query's candidates, and 0.0 for every candidate when a stage gives them all the same score."""

    def min_max(scores: dict[str, float]) -> dict[str, float]:  # n(d) = (x(d) - min x) / (max x - min x)
        low, high = min(scores.values()), max(scores.values())
        return {d: (x - low) / (high - low) if high > low else 0.0 for d, x in scores.items()}

    fused = {}
    for q in first:
        n1, n2 = min_max(first[q]), min_max(second[q])
        fused[q] = {d: weight * n2[d] + (1 - weight) * n1[d] for d in n1}
    return fused
