"""Solutions to notebook 07's exercises."""

from __future__ import annotations

import torch


def code_views(hidden: torch.Tensor, attention_mask: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Exercise 1: y_i = sum_t softmax_t(c_i . h_t) h_t for each text, padding's logits set to -inf; (B, m, D).

    >>> h = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])     # (B=1, L=3, D=2); the last is padding
    >>> code_views(h, torch.tensor([[1, 1, 0]]), torch.tensor([[0.0, 0.0], [9.0, 0.0]])).round(decimals=3)
    tensor([[[0.5000, 0.5000],
             [1.0000, 0.0000]]])
    """
    logits = codes @ hidden.transpose(1, 2)  # (m, D) @ (B, D, L) -> (B, m, L)
    padding = attention_mask[:, None, :] == 0  # (B, 1, L)
    logits = logits.masked_fill(padding, float("-inf"))
    weights = logits.softmax(dim=-1)  # (B, m, L): each code's weights sum to 1 over the tokens
    return weights @ hidden  # (B, m, L) @ (B, L, D) -> (B, m, D)


def poly_score(q_vecs: torch.Tensor, d_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """Exercise 2: s(q, d) = sum_i softmax_i(scale * a_i) a_i with a_i = y_i . e_d; views (Q, m, D), documents
    (N, D) -> (Q, N).

    >>> q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])             # one claim, two views (Q=1, m=2, D=2)
    >>> poly_score(q, torch.tensor([[1.0, 0.0], [0.6, 0.8]]), scale=20.0).round(decimals=3)
    tensor([[1.0000, 0.7960]])
    """
    a = q_vecs @ d_emb.T  # (Q, m, D) @ (D, N) -> (Q, m, N): cosine of each view with each document
    weights = (scale * a).softmax(dim=1)  # over the m views, for each document
    return (weights * a).sum(dim=1)  # (Q, N)
