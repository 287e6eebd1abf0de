"""Every training loss of the course: contrastive (InfoNCE with in-batch negatives, built in notebook 03), over
a whole fixed corpus (03), listwise and binary cross-entropy over a cross-encoder's groups (04), and the three
distillation losses (06: ``score_mse_loss``, ``margin_mse_loss``, ``softmax_kl_loss``, see ``distill``).

A batch holds B (query, positive document) pairs. Each query's positive is the matching row; the other B - 1
documents of the batch serve as its negatives for free, plus any extra rows (hard negatives, shared by the
whole batch). With s(q, d) = q . d (the cosine for normalised embeddings) and temperature tau:

    L = -1/B sum_i log( exp(s(q_i, d_i) / tau) / sum_j exp(s(q_i, d_j) / tau) )

that is, cross-entropy over the rows of scores = q_emb @ d_emb.T / tau with labels = arange(B).

temperature = 1 / scale: sentence-transformers' ``MultipleNegativesRankingLoss`` uses scale 20 (tau = 0.05),
the syllabus uses tau = 0.07 (the value from MoCo and CLIP). Cosines lie in [-1, 1], so 1 / tau sets how far
apart the logits can be: a small tau sharpens the softmax onto the hardest negatives.

A batch that holds the same document twice (or two copies of a query) makes a correct pair count as a
negative: a false negative. ``training.NoDuplicatesBatchSampler`` builds batches without them.

>>> q_emb = d_emb = torch.eye(3)                  # each query matches its own document, cosine 1 vs 0
>>> round(in_batch_negatives_loss(q_emb, d_emb, temperature=1.0).item(), 4)    # log(1 + 2 / e)
0.5514
>>> round(in_batch_negatives_loss(q_emb, d_emb, temperature=0.05).item(), 4)   # sharper: near 0
0.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def in_batch_negatives_loss(
    q_emb: torch.Tensor, d_emb: torch.Tensor, temperature: float = 0.05, symmetric: bool = False
) -> torch.Tensor:
    """InfoNCE over a batch: row i of ``d_emb`` is the positive of query i; rows from B on are hard negatives.

    ``symmetric`` adds the document -> query direction (each of the first B documents must pick its query
    among the B queries) and returns the mean of the two directions.

    Args:
        q_emb: query embeddings (B, D).
        d_emb: document embeddings (B + extra, D); row i < B is query i's positive.
        temperature: t, scores are divided by it (smaller: sharper softmax).
        symmetric: also the document -> query direction.

    Returns:
        a scalar tensor, the mean loss over the batch.

    Raises:
        ValueError: the shapes do not fit.
    """
    if q_emb.ndim != 2 or d_emb.ndim != 2 or d_emb.shape[0] < q_emb.shape[0] or d_emb.shape[1] != q_emb.shape[1]:
        shapes = f"{tuple(q_emb.shape)} and {tuple(d_emb.shape)}"
        raise ValueError(f"need q_emb (B, D) and d_emb (B + extra, D), got {shapes}.")
    B = q_emb.shape[0]
    scores = q_emb @ d_emb.T  # (B, B + extra)
    loss = scores_loss(scores, temperature)
    if symmetric:
        loss = (loss + scores_loss(scores[:, :B].T, temperature)) / 2  # (B, B): document i -> query i
    return loss


def scores_loss(scores: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE on a score matrix (B, B + extra) whose diagonal holds the positives: cross-entropy of
    scores / temperature with labels 0..B-1. Any model that scores every query of a batch against every
    document (dot products, a poly-encoder's attention, ColBERT's MaxSim) trains with it.

    >>> round(scores_loss(torch.eye(3), temperature=1.0).item(), 4)      # the same as the dot products above
    0.5514
    """
    if scores.ndim != 2 or scores.shape[1] < scores.shape[0]:
        raise ValueError(f"need scores (B, B + extra), positives on the diagonal, got {tuple(scores.shape)}.")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: it must be positive (scale = 1 / temperature).")
    labels = torch.arange(len(scores), device=scores.device)  # (B,)
    return F.cross_entropy(scores / temperature, labels)


def corpus_softmax_loss(
    q_emb: torch.Tensor,
    d_emb: torch.Tensor,
    positives: torch.Tensor,
    temperature: float = 0.05,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE against a whole corpus: every document competes with query i's positive ``d_emb[positives[i]]``.

        L = -1/B sum_i log( exp(q_i . d_p(i) / t) / sum_n exp(q_i . d_n / t) )       d: (N, D), the corpus

    With the document tower frozen, ``d_emb`` is computed once and a step costs one batch of queries; the
    negatives are every other document, other queries' answers included. ``exclude`` (B, N) is True where a
    document is another relevant one for query i: it is masked out rather than counted as a negative.

    Args:
        q_emb: query embeddings (B, D).
        d_emb: the corpus's embeddings (N, D).
        positives: (B,) long, the row of each query's positive in ``d_emb``.
        temperature: t, positive.
        exclude: (B, N) bool, other relevant documents to mask out; None: none.

    Returns:
        a scalar tensor, the mean loss over the batch.

    Raises:
        ValueError: the shapes do not fit, or ``temperature <= 0``.

    >>> q, d = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(corpus_softmax_loss(q, d, torch.tensor([0]), temperature=1.0).item(), 4)      # log(1 + e^-1)
    0.3133
    """
    if q_emb.ndim != 2 or d_emb.ndim != 2 or q_emb.shape[1] != d_emb.shape[1] or positives.shape != q_emb.shape[:1]:
        shapes = f"{tuple(q_emb.shape)}, {tuple(d_emb.shape)} and {tuple(positives.shape)}"
        raise ValueError(f"need q_emb (B, D), d_emb (N, D) and positives (B,), got {shapes}.")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: it must be positive (scale = 1 / temperature).")
    scores = q_emb @ d_emb.T / temperature  # (B, N)
    if exclude is not None:
        exclude = exclude.clone()
        exclude[torch.arange(len(positives)), positives] = False  # never mask the positive itself
        scores = scores.masked_fill(exclude, float("-inf"))
    return F.cross_entropy(scores, positives)


def listwise_loss(logits: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy over groups: row i holds one query's logits, its positive in column 0.

        L = -1/G sum_i log( exp(z_i0) / sum_j exp(z_ij) )         z: (G, 1 + negatives)

    The cross-encoder's counterpart of in-batch negatives: each positive competes with its own negatives.

    Args:
        logits: (G, 1 + negatives), the positive in column 0.

    Returns:
        a scalar tensor, the mean over groups.

    Raises:
        ValueError: not 2-D, or no negative.

    >>> round(listwise_loss(torch.tensor([[2.0, 0.0, 0.0]])).item(), 4)      # log(1 + 2 e^-2)
    0.2395
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"need logits (G, 1 + negatives) with at least one negative, got {tuple(logits.shape)}.")
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


def group_bce_loss(logits: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Binary cross-entropy on the logits of groups, label 1 for the positive in column 0 and 0 for the rest,
    averaged over all pairs (``BCEWithLogitsLoss``: computed from the logits, never from ``sigmoid``):

        bce(z, y) = -[p * y * log sigmoid(z) + (1 - y) * log(1 - sigmoid(z))]      (p = ``pos_weight``, 1 if None)

    A group holds 1 positive and n negatives, so plain BCE gives the negatives n times the positive's weight;
    ``pos_weight=n`` balances the two.

    >>> round(group_bce_loss(torch.tensor([[0.0, 0.0]])).item(), 4)                  # log 2 for every pair
    0.6931
    >>> round(group_bce_loss(torch.tensor([[0.0, 0.0]]), pos_weight=3.0).item(), 4)  # (3 log 2 + log 2) / 2
    1.3863
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"need logits (G, 1 + negatives) with at least one negative, got {tuple(logits.shape)}.")
    labels = torch.zeros_like(logits)  # (G, 1 + negatives): 1 for the positive in column 0
    labels[:, 0] = 1.0
    weight = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)


def score_mse_loss(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between the student's and the teacher's scores, both (G, W).

    Args:
        scores: the student's scores (G, W).
        teacher: the teacher's scores (G, W), targets (no gradient needed).

    Returns:
        a scalar tensor.

    Raises:
        ValueError: the shapes differ or are not 2-D.

    >>> float(score_mse_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 0.0]])))
    2.0
    """
    if scores.shape != teacher.shape or scores.ndim != 2:
        raise ValueError(f"need student and teacher scores of one shape (G, W), got {tuple(scores.shape)} and "
                         f"{tuple(teacher.shape)}.")
    return F.mse_loss(scores, teacher)


def margin_mse_loss(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MarginMSE: MSE between the student's and the teacher's margins ``score[:, 0] - score[:, j]``, (G, W).

    Args:
        scores: the student's scores (G, W), the positive in column 0, W >= 2.
        teacher: the teacher's scores (G, W), laid out the same.

    Returns:
        a scalar tensor, the mean over the G x (W - 1) margins.

    Raises:
        ValueError: the shapes differ, are not 2-D, or W < 2.

    >>> float(margin_mse_loss(torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([[3.0, 0.0, 1.0]])))
    1.0
    """
    if scores.shape != teacher.shape or scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"need student and teacher scores of one shape (G, W >= 2), positive in column 0, got "
                         f"{tuple(scores.shape)} and {tuple(teacher.shape)}.")
    margins = scores[:, :1] - scores[:, 1:]  # (G, W - 1)
    return F.mse_loss(margins, teacher[:, :1] - teacher[:, 1:])


def softmax_kl_loss(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL divergence from the teacher's softmax over each group to the student's, averaged over groups, (G, W).

    Args:
        scores: the student's scores (G, W), W >= 2.
        teacher: the teacher's scores (G, W).

    Returns:
        a scalar tensor.

    Raises:
        ValueError: the shapes differ, are not 2-D, or W < 2.

    >>> float(softmax_kl_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([[2.0, 0.0]])))
    0.0
    """
    if scores.shape != teacher.shape or scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"need student and teacher scores of one shape (G, W >= 2), got {tuple(scores.shape)} and "
                         f"{tuple(teacher.shape)}.")
    return F.kl_div(F.log_softmax(scores, 1), F.log_softmax(teacher, 1), log_target=True, reduction="batchmean")
