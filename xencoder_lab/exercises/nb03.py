"""Checks for notebook 03's exercises: the in-batch negatives loss with a temperature and hard negatives
(against ``losses.in_batch_negatives_loss``), the false-negative guard of hard-negative mining (against
``negatives.mine_hard_negatives`` with ``depth=1``), and the read-off on the query tower's document prior."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from xencoder_lab.exercises import Case, check, check_answer, screen
from xencoder_lab.losses import in_batch_negatives_loss
from xencoder_lab.negatives import mine_hard_negatives
from xencoder_lab.protocol import relevant_documents


def check_info_nce_loss(info_nce_loss) -> bool | None:
    """Exercise 1: ``info_nce_loss(q_emb, d_emb, temperature)``, InfoNCE with in-batch negatives; rows of
    ``d_emb`` from B on are hard negatives. Every row has length 1, so the checks hold whether or not the
    learner normalises again."""
    unit = lambda rows: F.normalize(torch.tensor(rows), dim=1)  # noqa: E731
    same = unit([[1.0, 0.2, 0.1], [0.9, 0.5, 0.1], [0.8, 0.3, 0.5]])  # (B=3, D=3), cosines 0.9 to 0.95 apart
    docs = unit([[0.9, 0.4, 0.2], [1.0, 0.3, 0.3], [0.7, 0.6, 0.4]])  # (B=3, D=3): q_emb @ d_emb.T not symmetric
    hard = unit([[1.0, 0.3, 0.2], [0.8, 0.5, 0.3]])  # (2, D): two hard negatives
    cases = [
        Case("queries equal to their documents at temperature 1", (same, same, 1.0),
             hint="row i of q_emb @ d_emb.T is a classification whose right answer is column i, the diagonal: the "
                  "loss is the mean over queries of -log softmax(row i)[i] (F.cross_entropy, labels arange(B))"),
        Case("temperature 0.05", (same, same, 0.05),
             hint="divide the scores by the temperature before the softmax (0.05 is a scale of 20)"),
        Case("scores that are not symmetric", (same, docs, 0.05),
             hint="the softmax runs along each row (dim=1), over the documents one query competes with, not down "
                  "a column"),
        Case("two hard negatives appended (d_emb has B + 2 rows)", (same, torch.cat([docs, hard]), 0.05),
             hint="rows B and beyond of d_emb are hard negatives: they join every query's softmax, and the labels "
                  "stay arange(B)"),
    ]
    return check("Exercise 1 (in-batch negatives)", info_nce_loss, in_batch_negatives_loss, cases)


def _hard_negative(scores: np.ndarray, positive: int, relevant: set[int], margin: float = 0.95) -> int:
    """The package's mining for one query, deterministic: the best candidate that passes the rule."""
    return mine_hard_negatives(scores[None], [positive], [relevant], depth=1, margin=margin)[0]


def check_hard_negative(hard_negative) -> bool | None:
    """Exercise 2: ``hard_negative(scores, positive, relevant, margin=0.95)``, the column of one query's hardest
    negative that passes the false-negative guard. Every case has a candidate that passes (the package's random
    fallback for a query with none is not part of the exercise)."""
    cases = [
        Case("no candidate near the positive", (np.array([0.2, 0.9, 0.5, 0.7, 0.1]), 1, {1}),
             hint="the hard negative is the highest-scoring document that is not relevant: return its column"),
        Case("an unjudged document within 5% of the positive", (np.array([0.3, 0.9, 0.5, 0.7, 0.88]), 1, {1}),
             hint="skip candidates scoring at or above margin x the positive's score (here 0.95 x 0.9): an "
                  "unjudged document that close is likely relevant, a false negative"),
        Case("a second relevant document below the margin", (np.array([0.3, 0.9, 0.5, 0.8, 0.1]), 1, {1, 3}),
             hint="every document in `relevant` is judged relevant for this query, not only the positive: never "
                  "use one as a negative"),
        Case("a positive scoring 0.5", (np.array([0.46, 0.5, 0.3, 0.1]), 1, {1}),
             hint="the margin is a ratio: keep d when s(q, d) < margin x s(q, d+), not s(q, d+) - 0.05"),
        Case("margin 0.8", (np.array([0.85, 1.0, 0.3, 0.1]), 1, {1}), kwargs={"margin": 0.8},
             hint="use the margin argument, not a fixed 0.95"),
        Case("a candidate exactly at the margin", (np.array([0.5, 1.0, 0.25, 0.1]), 1, {1}), kwargs={"margin": 0.5},
             hint="keep only scores strictly below margin x the positive's score: one exactly on the line is "
                  "skipped too"),
    ]
    return check("Exercise 2 (false-negative guard)", hard_negative, _hard_negative, cases)


def check_prior(answer: float | None, run: dict[str, list[str]], unseen, train) -> bool | None:
    """Exercise 3: the share of the top-10 slots of ``unseen``'s claims that ``run`` (the query tower's) gives to
    documents a claim of ``train`` cites. An answer that is no share is rejected before anything is computed."""
    title = "Exercise 3 (the prior, measured)"
    verdict = screen(title, answer, "a share", closed=True)
    if verdict is not True:
        return verdict
    trained_on = relevant_documents(train)
    expected = float(np.mean([len(set(run[q][:10]) & trained_on) / 10 for q in unseen.queries]))
    return check_answer(title, answer, expected, 1e-3,
                        "section 7's share, on runs[\"query tower\"]: for each unseen claim, the training positives "
                        "in its top 10, divided by 10, averaged over the claims")
