"""Solutions to notebook 03's exercises."""

from __future__ import annotations

import numpy as np
import torch


def info_nce_loss(q_emb: torch.Tensor, d_emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Exercise 1: L = -1/B sum_i log( exp(s_ii / t) / sum_j exp(s_ij / t) ), s = q_emb @ d_emb.T, where j runs
    over all rows of ``d_emb`` (the B positives and any hard negatives after them)."""
    scores = q_emb @ d_emb.T / temperature  # (B, B + extra)
    log_probs = scores.log_softmax(dim=1)  # each query's softmax over its documents
    rows = torch.arange(len(q_emb))  # (B,): query i's positive is document i
    return -log_probs[rows, rows].mean()


def hard_negative(scores: np.ndarray, positive: int, relevant: set[int], margin: float = 0.95) -> int:
    """Exercise 2: the highest-scoring column d with d not in ``relevant`` and scores[d] < margin * scores[positive]."""
    line = margin * scores[positive]  # at or above it, a document may be an unjudged relevant one
    for column in np.argsort(-scores, kind="stable"):  # best first
        if column not in relevant and scores[column] < line:
            return int(column)
    raise ValueError("no candidate scores below the margin")
