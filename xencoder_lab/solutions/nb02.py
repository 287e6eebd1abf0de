"""Solutions to notebook 02's exercises."""

from __future__ import annotations

import numpy as np
import torch


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Exercise 1: the mean of the real tokens, e = sum_t m_t h_t / max(sum_t m_t, 1e-9), one row per text."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, L, 1): 1 for real tokens, 0 for padding
    total = (last_hidden_state * mask).sum(dim=1)  # (B, D): the padding adds nothing
    count = mask.sum(dim=1).clamp(min=1e-9)  # (B, 1): real tokens per text, never 0
    return total / count  # (B, D)


def cosine_top_k(
    q_emb: np.ndarray, d_emb: np.ndarray, doc_ids: list[str], k: int
) -> tuple[list[list[str]], np.ndarray]:
    """Exercise 2: cos(q, d) = q.d / (|q| |d|) for every pair, then each query's k best: (ids, scores (Q, k))."""
    q = q_emb / np.linalg.norm(q_emb, axis=1, keepdims=True)  # (Q, D), rows of length 1
    d = d_emb / np.linalg.norm(d_emb, axis=1, keepdims=True)  # (N, D)
    scores = q @ d.T  # (Q, N) cosines
    top = np.argsort(-scores, axis=1)[:, :k]  # (Q, k) columns, best first
    return [[doc_ids[j] for j in row] for row in top], np.take_along_axis(scores, top, axis=1)
