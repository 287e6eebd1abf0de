"""Solutions to notebook 01's exercises."""

from __future__ import annotations

import math


def recall_at_k(ranking: list[str], judged: dict[str, int], k: int) -> float:
    """Exercise 1: the share of the relevant documents (grade > 0) found in ``ranking[:k]``."""
    relevant = {doc for doc, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranking[:k])) / len(relevant)


def ndcg_at_10(ranking: list[str], judged: dict[str, int]) -> float:
    """Exercise 2: DCG@10 / ideal DCG@10, gain = grade, discount = log2(rank + 1)."""
    gains = [judged.get(doc, 0) for doc in ranking[:10]]
    dcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))
    ideal_gains = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_gains, start=1))
    return dcg / ideal if ideal > 0 else 0.0
