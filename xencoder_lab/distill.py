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

>>> t = torch.tensor([[9.0, 4.0, 1.0]])                      # (G=1, W=3): the teacher's logits
>>> float(margin_mse_loss(t - 5.0, t)), float(score_mse_loss(t - 5.0, t))   # same margins, shifted logits
(0.0, 25.0)
>>> float(margin_mse_loss(t / 2, t)), round(float(softmax_kl_loss(t / 2, t)), 3)  # half the margins
(11.125, 0.071)

A bi-encoder student scores a pair as ``scale * cos(q, d)`` (``bi_encoder_group_scores``); a small
cross-encoder student is the teacher with its bottom ``layers`` layers kept (``cross_encoder.small_cross_encoder``:
dropping the top layers loses the least, Sajjad et al., 2020) and its head and warm-start scale, reading
``max_length`` tokens.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .bi_encoder import BiEncoder
from .cache import load_or_compute_rows
from .cross_encoder import PAIR_CACHE, CrossEncoder, group_pairs, pair_cache_parts, pair_key
from .losses import listwise_loss, margin_mse_loss, score_mse_loss, softmax_kl_loss
from .training import passes, train

LOSSES = ("margin_mse", "mse", "kl", "contrastive")  # contrastive: the control, labels only, the teacher unused


def teacher_scores(
    teacher: CrossEncoder,
    groups: Sequence[tuple[str, str, Sequence[str]]],
    batch_size: int = 32,
    show_progress=None,
    cache_root=None,
) -> torch.Tensor:
    """The teacher's logits (G, W) for every pair of ``groups``, positive in column 0, each pair scored once
    and kept in the disk cache under ``cross_encoder.score_candidates``'s keys (a rerun reads them back).

    >>> teacher = CrossEncoder(max_length=32, cosine_scale=20.0)
    >>> teacher_scores(teacher, [("Aspirin prevents heart attacks.", "Aspirin cut heart attacks.", ["Measles."])],
    ...                cache_root=getfixture("tmp_path")).shape
    torch.Size([1, 2])
    """
    queries, docs, width = group_pairs(groups)

    def compute(rows: list[int]):
        return teacher.score([queries[i] for i in rows], [docs[i] for i in rows], batch_size, show_progress)

    keys = [pair_key(q, d) for q, d in zip(queries, docs)]
    logits = load_or_compute_rows(PAIR_CACHE, pair_cache_parts(teacher), keys, compute, root=cache_root)  # (G * W,)
    return torch.as_tensor(logits, dtype=torch.float32).view(len(groups), width)


def bi_encoder_group_scores(model: BiEncoder, groups: Sequence[tuple[str, str, Sequence[str]]], scale: float):
    """The bi-encoder's scores (G, W) of each group's pairs, ``scale * cos(q, d)``, with gradients (none reach a
    frozen document tower)."""
    queries, docs, width = group_pairs(groups)
    q_emb = model(model.tokenize([q for q, _, _ in groups]), "query")  # (G, D)
    d_emb = model(model.tokenize(docs, "document"), "document").view(len(groups), width, -1)  # (G, W, D)
    return scale * torch.einsum("gd,gwd->gw", q_emb, d_emb)  # (G, W); unit vectors, so dot = cosine


def cross_encoder_group_scores(model: CrossEncoder, groups: Sequence[tuple[str, str, Sequence[str]]]):
    """The cross-encoder's logits (G, W) of each group's pairs, with gradients."""
    queries, docs, width = group_pairs(groups)
    return model(model.tokenize(queries, docs)).view(len(groups), width)  # (G, W)


def train_student(
    model: torch.nn.Module,
    groups: Sequence[tuple[str, str, Sequence[str]]],
    teacher: torch.Tensor,
    group_scores: Callable[[Sequence], torch.Tensor],
    loss: str = "margin_mse",
    steps: int = 40,
    groups_per_step: int = 16,
    lr: float = 2e-5,
    head_lr: float | None = None,
    warmup: int | None = None,
    seed: int = 0,
    log_every: int = 10,
    evaluate=None,
    evaluate_every: int | None = None,
    on_evaluate=None,
    show_progress: bool = True,
) -> list[dict]:
    """Train ``model`` in place to give ``teacher``'s scores (G, W) to ``groups``; return the log.

    Each step draws ``groups_per_step`` groups (a new shuffle every pass), scores them with
    ``group_scores(chosen_groups)`` (G', W) and takes ``margin_mse_loss``, ``score_mse_loss`` or
    ``softmax_kl_loss`` against the teacher's rows, or (``loss="contrastive"``, the control without a teacher)
    ``losses.listwise_loss``: a softmax over each group with the positive as the label. Parameters whose names
    start with ``encoder.`` or ``query_tower.`` learn at ``lr``; the rest (a cross-encoder's head and scale) at
    ``head_lr`` (``lr`` if None).
    Schedule, logging and evaluation are ``training.train``'s.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: use one of {LOSSES}.")
    if len(teacher) != len(groups):
        raise ValueError(f"need one row of teacher scores per group, got {len(teacher)} rows for {len(groups)}.")
    loss_fn = {"margin_mse": margin_mse_loss, "mse": score_mse_loss, "kl": softmax_kl_loss,
               "contrastive": lambda scores, _: listwise_loss(scores)}[loss]
    batches = passes(len(groups), groups_per_step, seed)

    def step_loss(step: int) -> torch.Tensor:
        chosen = next(batches)
        scores = group_scores([groups[i] for i in chosen])  # (G', W)
        return loss_fn(scores, teacher[chosen].to(scores.device))

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    body = [p for n, p in trainable if n.startswith(("encoder.", "query_tower."))]
    head = [p for n, p in trainable if not n.startswith(("encoder.", "query_tower.", "doc_tower."))]
    param_groups = [{"params": body, "lr": lr}] + ([{"params": head, "lr": head_lr or lr}] if head else [])
    return train(
        model, step_loss, param_groups, steps, warmup, seed, log_every, evaluate, evaluate_every, on_evaluate,
        show_progress=show_progress,
    )
