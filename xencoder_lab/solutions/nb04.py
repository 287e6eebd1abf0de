"""Solutions to notebook 04's exercises."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pair_input(query_ids: list[int], doc_ids: list[int], max_length: int, cls_id: int = 101,
               sep_id: int = 102) -> dict[str, list[int]]:
    """Exercise 1: ``[CLS] query [SEP] document [SEP]`` in at most ``max_length`` tokens, 3 of them special.

    While the pair is too long, the longer text loses its last token (a query up to half the room stays whole).
    Token type 0 for [CLS], the query and the first [SEP]; 1 for the document and the last [SEP].
    """
    query, doc = list(query_ids), list(doc_ids)
    while len(query) + len(doc) + 3 > max_length:
        if len(query) > len(doc):
            query.pop()
        else:
            doc.pop()
    input_ids = [cls_id, *query, sep_id, *doc, sep_id]
    token_type_ids = [0] * (len(query) + 2) + [1] * (len(doc) + 1)
    return {"input_ids": input_ids, "token_type_ids": token_type_ids}


def listwise_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Exercise 3: L = -1/G sum_i log softmax(z_i)[0] = mean_i (logsumexp_j z_ij - z_i0), logits (G, 1 + n).

    ``logsumexp`` subtracts the row's largest logit before ``exp``, so large logits do not overflow.
    """
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def group_bce(logits: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Exercise 4: the mean over all pairs of p y (-log sigmoid(z)) + (1 - y) (-log(1 - sigmoid(z))), y = 1 in
    column 0, p = ``pos_weight`` (1 if None). From the logits: -log sigmoid(z) = softplus(-z) = log(1 + e^-z)
    and -log(1 - sigmoid(z)) = softplus(z), which ``F.softplus`` computes without overflow."""
    labels = torch.zeros_like(logits)  # (G, 1 + n)
    labels[:, 0] = 1.0
    p = 1.0 if pos_weight is None else pos_weight
    per_pair = p * labels * F.softplus(-logits) + (1 - labels) * F.softplus(logits)  # (G, 1 + n)
    return per_pair.mean()
