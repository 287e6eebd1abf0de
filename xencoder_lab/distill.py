"""Distillation: the cross-encoder teaches a faster student its scores (built in notebook 06).

The teacher (the course cross-encoder) scores groups ``(query, positive, [negatives])`` once; a student (a
bi-encoder, or a cross-encoder with fewer layers and shorter inputs) learns to give the same scores. Three losses
(in ``losses``) over a group's scores, student ``s`` and teacher ``t`` of shape (G, W), the positive in column 0:

    MSE         L = mean_{g, j} (s_gj - t_gj)^2                                    (the syllabus)
    MarginMSE   L = mean_{g, j > 0} ((s_g0 - s_gj) - (t_g0 - t_gj))^2              (Hofstaetter et al., 2020)
    KL          L = mean_g sum_j p_gj (log p_gj - log q_gj),  p = softmax(t_g), q = softmax(s_g)

MSE asks the student to match the teacher's logits themselves, offset included; a bi-encoder's scaled cosine
lives in [-scale, scale] and cannot follow a teacher whose logits drift by a constant per query. MarginMSE asks
only for the teacher's *differences* between the positive and each negative, which any architecture can match
if its scale reaches them. KL asks only for the teacher's *distribution* over a group: a margin of 12 logits and
one of 6 both mean "the positive, almost surely", which a cosine can say. Notebook 06 measures the three on
SciFact, a query tower taught by the course cross-encoder against the zero-shot model's documents: MSE never
improves on the zero-shot model; MarginMSE at 20 x cosine cannot reach the teacher's margins (about 12 logits)
and loses on unseen-answer claims, gaining out of domain; KL, the loss of the course's distilled bi-encoder, does
as well as the same groups' labels alone.

>>> from xencoder_lab.losses import margin_mse_loss, score_mse_loss, softmax_kl_loss
>>> t = torch.tensor([[9.0, 4.0, 1.0]])                      # (G=1, W=3): the teacher's logits
>>> float(margin_mse_loss(t - 5.0, t)), float(score_mse_loss(t - 5.0, t))   # same margins, shifted logits
(0.0, 25.0)
>>> float(margin_mse_loss(t / 2, t)), round(float(softmax_kl_loss(t / 2, t)), 3)  # half the margins
(11.125, 0.071)

A bi-encoder student scores a pair as ``scale * cos(q, d)`` (``bi_encoder_group_scores``); a small
cross-encoder student is the teacher with its bottom ``layers`` layers kept (``cross_encoder.small_cross_encoder``:
dropping the top layers loses the least, Sajjad et al., 2020) and its head and warm-start scale, reading
``max_length`` tokens.

The teacher's targets are ``cross_encoder.score_groups(teacher, groups, cache=True)``; a student learns them with
``training.train_groups`` (``loss="margin_mse"``, ``"mse"`` or ``"kl"``, ``teacher=`` the targets), a bi-encoder
student scoring its groups with ``bi_encoder_group_scores``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .bi_encoder import BiEncoder
from .cross_encoder import group_pairs


def bi_encoder_group_scores(model: BiEncoder, groups: Sequence[tuple[str, str, Sequence[str]]],
                            scale: float) -> torch.Tensor:
    """The bi-encoder's scores (G, W) of each group's pairs, ``scale * cos(q, d)``, with gradients (none reach a
    frozen document tower).

    Args:
        model: the bi-encoder (student).
        groups: ``(query, positive, [negatives])``, each with the same number of negatives.
        scale: the cosine's multiplier, to put scores on the teacher's logit scale.

    Returns:
        (G, W) float tensor, W = 1 + negatives, the positive in column 0.

    >>> model = BiEncoder(max_length=16)
    >>> bi_encoder_group_scores(model, [("aspirin", "aspirin cuts pain", ["measles"])], scale=20.0).shape
    torch.Size([1, 2])
    """
    queries, docs, width = group_pairs(groups)
    q_emb = model(model.tokenize([q for q, _, _ in groups]), "query")  # (G, D)
    d_emb = model(model.tokenize(docs, "document"), "document").view(len(groups), width, -1)  # (G, W, D)
    return scale * torch.einsum("gd,gwd->gw", q_emb, d_emb)  # (G, W); unit vectors, so dot = cosine
