"""Hard negatives: documents a retriever ranks high for a query but that are not relevant (notebook 03).

In-batch negatives are random documents, mostly easy to tell apart. A hard negative is one the current model
confuses with the positive, so the loss has something to learn from. The risk is a *false* negative: an
unjudged document that is in fact relevant (benchmarks judge only a few documents per query). So candidates
that score almost as high as the positive, or higher, are skipped:

    keep d  if  d is not judged relevant  and  s(q, d) < margin * s(q, d+)          (margin = 0.95)

and one of the first ``depth`` kept candidates is drawn at random (seeded).

>>> scores = np.array([[0.9, 0.8, 0.7, 0.2]])          # (Q=1, N=4); document 1 is the positive
>>> mine_hard_negatives(scores, positives=[1], relevant=[{1}], depth=1)
[2]
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np


def mine_hard_negatives(
    scores: np.ndarray,
    positives: Sequence[int],
    relevant: Sequence[set[int]],
    depth: int = 10,
    margin: float = 0.95,
    seed: int = 0,
) -> list[int]:
    """For each row of ``scores`` (Q, N), the column of one hard negative for the pair (row, positive column).

    ``relevant[i]`` holds every column judged relevant for row i (never a negative). When no candidate passes
    the margin, a random non-relevant column is drawn instead (an easy negative).
    """
    if scores.ndim != 2 or not len(positives) == len(relevant) == len(scores):
        raise ValueError(f"need scores (Q, N) and one positive and one relevant set per row, got {scores.shape}, "
                         f"{len(positives)} positives and {len(relevant)} relevant sets.")
    rng = random.Random(seed)
    negatives = []
    for row, pos, rel in zip(scores, positives, relevant):  # row: (N,)
        ranked = np.argsort(-row, kind="stable")
        kept = [int(d) for d in ranked if d not in rel and row[d] < margin * row[pos]][:depth]
        if not kept:
            kept = [rng.choice([d for d in range(len(row)) if d not in rel])]
        negatives.append(rng.choice(kept))
    return negatives
