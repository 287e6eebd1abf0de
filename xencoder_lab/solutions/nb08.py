"""Solutions to notebook 08's exercises."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def maxsim_scores(Q: torch.Tensor, query_mask: torch.Tensor, D: torch.Tensor, doc_mask: torch.Tensor) -> torch.Tensor:
    """Exercise 1: s(q, d) = sum over the query's kept vectors i of max over the document's real tokens j of
    cos(Q[i], D[j]); padded document positions are filled with -inf before the max, padded query vectors add 0.

    Q (B, Lq, dim), query_mask (B, Lq) bool, D (N, Ld, dim), doc_mask (N, Ld) bool. Returns (B, N).
    """
    Q = F.normalize(Q, dim=-1)
    D = F.normalize(D, dim=-1)
    sim = torch.einsum("bid,njd->bnij", Q, D)  # (B, N, Lq, Ld)
    sim = sim.masked_fill(~doc_mask[None, :, None, :], float("-inf"))
    best = sim.max(dim=-1).values  # (B, N, Lq): each query vector's best match
    best = best.masked_fill(~query_mask[:, None, :], 0.0)  # padded query vectors count 0
    return best.sum(dim=-1)  # (B, N)


def query_features(ids: list[int], marker: int, mask_id: int, length: int = 32) -> tuple[list[int], list[int]]:
    """Exercise 2: [CLS] marker tokens... [SEP], cut to ``length`` (keeping [SEP]), then [MASK] up to ``length``;
    attention 1 on the real tokens and the marker, 0 on the [MASK]s."""
    if len(ids) > length - 1:  # the marker takes one place
        ids = ids[: length - 2] + ids[-1:]
    ids = ids[:1] + [marker] + ids[1:]
    real = len(ids)
    return ids + [mask_id] * (length - real), [1] * real + [0] * (length - real)
