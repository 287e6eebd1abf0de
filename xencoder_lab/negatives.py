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

A (Q, N) score matrix grows with queries x corpus: 19 MB for SciFact's 919 training pairs, 17 TB for MS MARCO's
500,000 queries over 8.8M passages. ``top_candidates`` keeps only each query's top ``depth`` (computed a chunk
of queries at a time) and ``mine_from_candidates`` mines those, with the same rule (notebook 06).
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
    spread: int = 0,
    depth: int = 100,
    seed: int = 0,
) -> list[list[int]]:
    """For each row of ``scores`` (Q, N), ``n`` negative columns, best-ranked first: ``mine_hard_negatives`` with
    ``depth=1``, ``n`` rounds, each round's pick removed before the next. Then ``spread`` more, drawn at random
    (seeded) from the row's top ``depth`` columns that are neither relevant nor already picked: the candidates a
    reranker of that top ``depth`` meets at every rank, not only the hardest (Gao et al. 2021 train a reranker on
    negatives sampled from the retriever's list it serves).

    ``margin=None`` keeps every non-relevant column (no margin): with random ``scores`` that draws random
    negatives, the easy kind. ``scores`` is not changed.

    Args:
        scores: (Q, N), how well each column (document) matches each row (query).
        positives: the positive's column, one per row.
        relevant: the columns judged relevant, one set per row; never negatives.
        n: negatives per row.
        margin: a negative scores below ``margin`` x the positive's score; None: no margin.
        spread: negatives drawn from the whole top ``depth`` after the ``n`` hardest.
        depth: the list ``spread`` draws from, in ranks.
        seed: for ``spread``'s draws.

    Returns:
        Q lists of ``n + spread`` columns (fewer ``spread`` ones when the top ``depth`` runs out).

    Raises:
        ValueError: not one positive and one relevant set per row.

    >>> scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.2]])     # (Q=1, N=5); column 1 is the positive
    >>> mine_negatives(scores, positives=[1], relevant=[{1}], n=2)          # column 0 fails the margin
    [[2, 3]]
    >>> mine_negatives(scores, positives=[1], relevant=[{1}], n=2, margin=None)
    [[0, 2]]
    >>> mine_negatives(scores, positives=[1], relevant=[{1}], n=1, spread=2, depth=4)   # 2 from ranks 1-4's rest
    [[2, 3, 0]]
    """
    original = scores
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
    rows = [list(row) for row in zip(*chosen)] if n else [[] for _ in positives]
    rng = random.Random(seed)
    for row, picked, rel in zip(np.asarray(original), rows, relevant) if spread else ():  # row: (N,)
        top = np.argsort(-row, kind="stable")[:depth]
        rest = [int(c) for c in top if c not in rel and c not in picked]
        picked += rng.sample(rest, min(spread, len(rest)))
    return rows


def mine_groups(
    ds: Dataset,
    pairs: Sequence[tuple[str, str]],
    scores: np.ndarray,
    n: int,
    margin: float | None = 0.95,
    spread: int = 0,
    depth: int = 100,
    seed: int = 0,
) -> list[tuple[str, str, list[str]]]:
    """Training groups ``(query, positive, [n + spread negatives])``, as texts, one per (query id, relevant doc
    id) pair.

    ``scores[i]`` (N,) ranks the corpus, in ``list(ds.corpus)`` order, for ``pairs[i]``'s query (BM25, a
    bi-encoder, ...); every document ``ds.qrels`` judges for the query is kept out of its negatives, and the
    negatives are ``mine_negatives(scores, ..., n, margin, spread, depth, seed)``.

    Args:
        ds: the dataset the ids belong to.
        pairs: ``(query id, relevant doc id)``, one group each.
        scores: (len(pairs), N), row i ranking the corpus for ``pairs[i]``'s query.
        n: negatives per group.
        margin: see ``mine_negatives``; None: no margin.
        spread, depth, seed: see ``mine_negatives``.

    Returns:
        ``[(query text, positive text, [negative texts])]``, one per pair.

    Raises:
        ValueError: ``scores`` is not (len(pairs), N).

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
    negatives = mine_negatives(scores, positives, relevant, n, margin, spread, depth, seed)
    text = lambda c: document_text(ds.corpus[doc_ids[c]])  # noqa: E731
    return [(ds.queries[q], text(p), [text(c) for c in negs]) for (q, _), p, negs in zip(pairs, positives, negatives)]


def top_candidates(q_emb: np.ndarray, d_emb: np.ndarray, depth: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``depth`` best documents by inner product: ``(scores, columns)``, both (Q, depth), best first.

    Scored ``chunk`` queries at a time: memory ``chunk x N`` floats at most, plus the (Q, depth) result, never
    (Q, N). (For millions of documents, search a FAISS index instead: ``retrieval.DenseRetriever``.)

    Args:
        q_emb: query embeddings (Q, D).
        d_emb: document embeddings (N, D).
        depth: documents per query, 1 to N.
        chunk: queries scored at a time.

    Returns:
        ``(scores, columns)``: (Q, depth) in the embeddings' dtype and (Q, depth) int64, best first.

    Raises:
        ValueError: ``depth`` out of 1..N.

    >>> q_emb, d_emb = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    >>> scores, columns = top_candidates(q_emb, d_emb, depth=2, chunk=1)
    >>> columns.tolist(), scores.round(2).tolist()
    ([[0, 2], [1, 2]], [[0.9, 0.5], [0.8, 0.5]])
    """
    if not 1 <= depth <= len(d_emb):
        raise ValueError(f"depth={depth}, but there are {len(d_emb)} documents: use 1 <= depth <= {len(d_emb)}.")
    scores = np.empty((len(q_emb), depth), dtype=np.result_type(q_emb, d_emb))  # (Q, depth)
    columns = np.empty((len(q_emb), depth), dtype=np.int64)  # (Q, depth)
    for start in range(0, len(q_emb), chunk):
        block = q_emb[start : start + chunk] @ d_emb.T  # (chunk, N)
        top = np.argpartition(-block, depth - 1, axis=1)[:, :depth]  # (chunk, depth), unordered
        order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
        columns[start : start + chunk] = np.take_along_axis(top, order, axis=1)
        scores[start : start + chunk] = np.take_along_axis(block, columns[start : start + chunk], axis=1)
    return scores, columns


def mine_from_candidates(
    scores: np.ndarray,
    columns: np.ndarray,
    positive_scores: Sequence[float],
    relevant: Sequence[set[int]],
    n: int,
    margin: float | None = 0.95,
) -> list[list[int]]:
    """``mine_negatives`` on each query's candidates only: ``scores`` and ``columns`` (Q, depth) from
    ``top_candidates``, ``positive_scores[i]`` the score of query i's positive (it may be outside its top
    ``depth``), ``relevant[i]`` the columns never to use. Returns corpus columns, ``n`` per query.

    Args:
        scores: (Q, depth) candidate scores, best first.
        columns: (Q, depth) their corpus columns.
        positive_scores: (Q,) each query's positive's score.
        relevant: the corpus columns judged relevant, one set per query.
        n: negatives per query.
        margin: see ``mine_negatives``; None: no margin.

    Returns:
        Q lists of ``n`` corpus columns.

    Raises:
        ValueError: the shapes do not fit.

    >>> scores, columns = np.array([[0.9, 0.8, 0.7, 0.6]]), np.array([[7, 3, 5, 2]])   # 3 is the positive
    >>> mine_from_candidates(scores, columns, positive_scores=[0.8], relevant=[{3}], n=2)      # 7 fails the margin
    [[5, 2]]
    """
    if scores.shape != columns.shape or len(scores) != len(positive_scores) or len(scores) != len(relevant):
        raise ValueError(f"need scores and columns (Q, depth) and one positive score and relevant set per query, got "
                         f"{scores.shape}, {columns.shape}, {len(positive_scores)} and {len(relevant)}.")
    depth = scores.shape[1]
    local = np.concatenate([scores, np.asarray(positive_scores, dtype=scores.dtype)[:, None]], axis=1)  # (Q, depth+1)
    local_relevant = [{j for j, c in enumerate(row) if c in rel} | {depth} for row, rel in zip(columns, relevant)]
    picked = mine_negatives(local, [depth] * len(scores), local_relevant, n, margin)
    return [[int(row[j]) for j in picks] for row, picks in zip(columns, picked)]
