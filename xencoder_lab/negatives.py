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

``mine_negatives`` repeats this ``n`` times (the best remaining candidate each round), and ``mine_groups`` turns
the result into the (query, positive, [negatives]) text groups a cross-encoder trains on (notebook 04).
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from .data import Dataset, document_text


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


def mine_negatives(
    scores: np.ndarray,
    positives: Sequence[int],
    relevant: Sequence[set[int]],
    n: int,
    margin: float | None = 0.95,
) -> list[list[int]]:
    """For each row of ``scores`` (Q, N), ``n`` negative columns, best-ranked first: ``mine_hard_negatives`` with
    ``depth=1``, ``n`` rounds, each round's pick removed before the next.

    ``margin=None`` keeps every non-relevant column (no margin): with random ``scores`` that draws random
    negatives, the easy kind. ``scores`` is not changed.

    >>> scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.2]])     # (Q=1, N=5); column 1 is the positive
    >>> mine_negatives(scores, positives=[1], relevant=[{1}], n=2)          # column 0 fails the margin
    [[2, 3]]
    >>> mine_negatives(scores, positives=[1], relevant=[{1}], n=2, margin=None)
    [[0, 2]]
    """
    scores = np.array(scores, copy=True)  # (Q, N), a copy in the caller's precision (float32 for embeddings)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(float)
    if margin is None:  # the positive at +inf: every other column passes
        scores[np.arange(len(scores)), list(positives)] = np.inf
        margin = 1.0
    chosen = []
    for _ in range(n):  # the best remaining candidate that passes the margin, one round at a time
        picked = mine_hard_negatives(scores, positives, relevant, depth=1, margin=margin)
        chosen.append(picked)
        scores[np.arange(len(picked)), picked] = -np.inf
    return [list(row) for row in zip(*chosen)]


def mine_groups(
    ds: Dataset,
    pairs: Sequence[tuple[str, str]],
    scores: np.ndarray,
    n: int,
    margin: float | None = 0.95,
) -> list[tuple[str, str, list[str]]]:
    """Training groups ``(query, positive, [n negatives])``, as texts, one per (query id, relevant doc id) pair.

    ``scores[i]`` (N,) ranks the corpus, in ``list(ds.corpus)`` order, for ``pairs[i]``'s query (BM25, a
    bi-encoder, ...); every document ``ds.qrels`` judges for the query is kept out of its negatives, and the
    negatives are ``mine_negatives(scores, ..., n, margin)``.

    >>> from xencoder_lab.data import TOY_PATH, load_beir
    >>> toy = load_beir("toy", split="test", path=TOY_PATH)
    >>> q, d = next((q, d) for q, judged in toy.qrels.items() for d, grade in judged.items() if grade > 0)
    >>> scores = np.arange(len(toy.corpus), dtype=float)[None, ::-1]      # (1, N): corpus order, best first
    >>> query, positive, negatives = mine_groups(toy, [(q, d)], scores, n=2, margin=None)[0]
    >>> query == toy.queries[q], positive == document_text(toy.corpus[d]), len(negatives)
    (True, True, 2)
    """
    doc_ids = list(ds.corpus)
    column = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    if len(scores) != len(pairs) or np.shape(scores)[1] != len(doc_ids):
        raise ValueError(f"need scores (pairs, corpus) = ({len(pairs)}, {len(doc_ids)}), got {np.shape(scores)}.")
    positives = [column[d] for _, d in pairs]
    relevant = [{column[d] for d in ds.qrels[q]} for q, _ in pairs]
    negatives = mine_negatives(scores, positives, relevant, n, margin)
    text = lambda c: document_text(ds.corpus[doc_ids[c]])  # noqa: E731
    return [(ds.queries[q], text(p), [text(c) for c in negs]) for (q, _), p, negs in zip(pairs, positives, negatives)]
