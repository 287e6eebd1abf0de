"""Checks for notebook 02's exercises: mean pooling with a padding mask (against ``bi_encoder.pool``), cosine
top-k over a small matrix (against ``BiEncoder.score`` and ``retrieval.top_k`` on normalised rows), and the
read-off on cutting abstracts at 128 tokens."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from xencoder_lab import metrics
from xencoder_lab.bi_encoder import BiEncoder, encode_corpus, pool
from xencoder_lab.exercises import Case, check, check_answer, screen
from xencoder_lab.retrieval import DenseRetriever, top_k

IDS = ["a", "b", "c", "d"]


def check_mean_pool(mean_pool) -> bool | None:
    """Exercise 1: ``mean_pool(last_hidden_state, attention_mask)``, (B, L, D) and (B, L) to (B, D)."""
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]],
                      [[2.0, 6.0], [0.0, 0.0], [0.0, 0.0]]])  # (B=2, L=3, D=2)
    padded = h.clone()
    padded[1, 1:] = torch.tensor([9.0, -9.0])  # the padding positions carry vectors, as a tower's do
    cases = [
        Case("one text without padding", (h[:1], torch.tensor([[1, 1, 1]])),
             hint="average the token vectors over the tokens (dim 1): one row of D numbers per text, shape (B, D)"),
        Case("a batch padded with zero vectors", (h, torch.tensor([[1, 1, 1], [1, 0, 0]])),
             hint="divide each text's sum by its number of real tokens, mask.sum(1), not by the padded length L"),
        Case("a batch whose padding has vectors of its own", (padded, torch.tensor([[1, 1, 1], [1, 0, 0]])),
             hint="the tower gives padding positions vectors too: multiply them by the mask (0 for padding) "
                  "before summing, so the padding adds nothing"),
        Case("a row with no real token", (padded, torch.tensor([[1, 1, 0], [0, 0, 0]])),
             hint="a row with no real token must come out as zeros, not NaN: clamp the token count to a small "
                  "positive number (clamp(min=1e-9)) before dividing"),
    ]
    return check("Exercise 1 (mean pooling)", mean_pool, partial(pool, how="mean"), cases)


def _cosine_top_k(q_emb: np.ndarray, d_emb: np.ndarray, doc_ids: list[str], k: int):
    """The package's scoring and top-k on rows scaled to length 1: (Q lists of k ids, scores (Q, k))."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return top_k(BiEncoder.score(unit(q_emb), unit(d_emb)), doc_ids, k)


def check_cosine_top_k(cosine_top_k) -> bool | None:
    """Exercise 2: ``cosine_top_k(q_emb, d_emb, doc_ids, k)``, each query's ``k`` best documents by cosine, as
    ``(ids, scores)`` like ``DenseRetriever.search``."""
    unit_docs = np.array([[0.8, 0.6], [0.6, 0.8], [-1.0, 0.0], [0.28, 0.96]])  # (N=4, D=2), length 1 each
    cases = [
        Case("two queries with vectors of length 1", (np.array([[1.0, 0.0], [0.0, 1.0]]), unit_docs, IDS, 2),
             hint="score every query against every document (q_emb @ d_emb.T, shape (Q, N)), sort each row from "
                  "the highest score down and keep the first k, as ids from doc_ids with their scores"),
        Case("a long document vector", (np.array([[1.0, 0.0]]), np.array([[3.0, 4.0], [0.96, 0.28], [0.0, 1.0]]),
                                        IDS[:3], 2),
             hint="normalise every row to length 1 before the dot product (cosine = q.d / (|q| |d|)): a long "
                  "document vector must not win on its length"),
        Case("a query vector of length 3", (np.array([[1.8, 2.4]]), np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]),
                                            IDS[:3], 2),
             hint="normalise the queries too: the scores are cosines, between -1 and 1, whatever a query's length"),
    ]
    return check("Exercise 2 (cosine top-k)", cosine_top_k, _cosine_top_k, cases)


def check_max_length(answer: float | None, test) -> bool | None:
    """Exercise 3: nDCG@10 of the zero-shot bi-encoder with abstracts cut at 128 tokens, on ``test`` (the
    notebook's dataset, its fast subset in CI). An answer that is no nDCG is rejected before anything is encoded."""
    title = "Exercise 3 (maximum length)"
    verdict = screen(title, answer)
    if verdict is not True:
        return verdict
    short = BiEncoder(max_length=128)
    query_ids = list(test.queries)
    retriever = DenseRetriever(encode_corpus(short, test), list(test.corpus))
    ranked, _ = retriever.search(short.encode_queries([test.queries[q] for q in query_ids], show_progress=False),
                                 k=10)
    expected = metrics.evaluate(dict(zip(query_ids, ranked)), test.qrels, ["ndcg@10"])["ndcg@10"]
    return check_answer(title, answer, expected, 1e-3,
                        "encode the corpus with BiEncoder(max_length=128) (encode_corpus), search every test claim "
                        "and evaluate nDCG@10")
