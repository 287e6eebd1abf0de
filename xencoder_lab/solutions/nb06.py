"""Solutions to notebook 06's exercises."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable

import torch


def margin_mse(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Exercise 1: MarginMSE = mean over g and j > 0 of ((s_g0 - s_gj) - (t_g0 - t_gj))^2, scores (G, W).

    >>> float(margin_mse(torch.tensor([[14.0, 9.0, 6.0]]), torch.tensor([[9.0, 4.0, 1.0]])))  # the teacher + 5
    0.0
    """
    student_margins = scores[:, :1] - scores[:, 1:]  # (G, W - 1): the positive minus each negative
    teacher_margins = teacher[:, :1] - teacher[:, 1:]  # (G, W - 1)
    return ((student_margins - teacher_margins) ** 2).mean()


def cached_score(cache: OrderedDict, query: str, doc: str, score: Callable[[str, str], float], maxsize: int) -> float:
    """Exercise 2: the pair's score from ``cache`` (key: sha256 of query + "\\0" + doc, the same in every process),
    else from ``score`` and kept; a hit moves its key to the end, and past ``maxsize`` the first (least recently
    used) key goes.

    >>> cache, calls = OrderedDict(), []
    >>> def score(query, doc):
    ...     calls.append(query)
    ...     return float(len(query + doc))
    >>> [cached_score(cache, q, "doc", score, maxsize=1) for q in ("a", "a", "bb", "a")], calls
    ([4.0, 4.0, 5.0, 4.0], ['a', 'bb', 'a'])
    """
    key = hashlib.sha256((query + "\0" + doc).encode()).hexdigest()
    if key in cache:
        cache.move_to_end(key)  # now the most recently used
        return cache[key]
    value = score(query, doc)
    cache[key] = value
    if len(cache) > maxsize:
        cache.popitem(last=False)  # the least recently used
    return value
