"""Checks for notebook 07's exercises: the codes' attention over a claim's tokens, against
``poly_encoder.code_attention``, and the abstract's attention over the claim's m views that gives the score,
against ``poly_encoder.poly_scores``."""

from __future__ import annotations

import torch

from xencoder_lab.exercises import Case, check
from xencoder_lab.poly_encoder import code_attention, poly_scores

# Three token vectors (L=3, D=2) of one claim, and codes that point at different tokens.
TOKENS = [[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]]
POINTING = [[1.5, 0.0], [0.0, 1.0]]


def check_code_views(code_views) -> bool | None:
    """Exercise 1: ``code_views(hidden, attention_mask, codes)``: hidden (B, L, D), mask (B, L), codes (m, D) ->
    the m views (B, m, D), y_i = sum_t softmax_t(c_i . h_t) h_t with padding masked."""
    t = torch.tensor
    padded = t([TOKENS, [[1.0, 0.0], [3.0, 3.0], [-2.0, 4.0]]])  # (B=2, L=3, D=2): the 2nd text has 1 token
    cases = [
        Case("codes at 0", (t([TOKENS]), t([[1, 1, 1]]), torch.zeros(3, 2)),
             hint="with codes at 0 every code weighs the tokens evenly: each of the m views is the mean of the "
                  "text's token vectors, and the result has shape (B, m, D)"),
        Case("two codes of different sizes", (t([[[1.0, 0.0], [1.0, 2.0], [1.0, -1.0]]]), t([[1, 1, 1]]),
                                              t([[1.0, 0.0], [2.0, 0.0]])),
             hint="the softmax runs over the tokens (the last axis of the (B, m, L) logits): each code's weights "
                  "sum to 1 over the tokens, whatever the other codes do"),
        Case("codes that point at different tokens", (t([TOKENS]), t([[1, 1, 1]]), t(POINTING)),
             hint="weigh the tokens by softmax_t(c_i . h_t), the plain dot products (no division by sqrt(D) here): "
                  "a code that points at a token takes mostly that token"),
        Case("a padded batch", (padded, t([[1, 1, 1], [1, 0, 0]]), t(POINTING)),
             hint="padding gets weight 0: set its logits to -inf before the softmax (multiplying the weights by the "
                  "mask afterwards leaves the real tokens' weights summing to less than 1)"),
    ]
    return check("Exercise 1 (the codes' attention)", code_views, code_attention, cases)


def check_poly_score(poly_score) -> bool | None:
    """Exercise 2: ``poly_score(q_vecs, d_emb, scale)``: views (Q, m, D), documents (N, D) -> scores (Q, N),
    s = sum_i softmax_i(scale * a_i) a_i with a_i = y_i . e_d."""
    t = torch.tensor
    views = t([[[1.0, 0.0], [0.0, 1.0]]])  # (Q=1, m=2, D=2)
    mirrored = t([[0.6, 0.8], [0.8, 0.6]])  # (N=2, D=2): each document is closer to one view
    cases = [
        Case("one view and one document", (t([[[0.6, 0.8]]]), t([[1.0, 0.0]]), 20.0),
             hint="a_i = y_i . e_d, and with a single view the score is that cosine; the result has shape (Q, N)"),
        Case("two views at scale 1", (views, mirrored, 1.0),
             hint="the document attends over the views: weights w_i = softmax_i(scale * a_i), then the score "
                  "sum_i w_i a_i (a soft maximum: neither the mean nor the max of the cosines)"),
        Case("two views at scale 20", (views, mirrored, 20.0),
             hint="multiply the cosines by scale inside the softmax, softmax_i(scale * a_i), and only there: at "
                  "20 the weights are sharp and the score sits just under the best view's cosine"),
        Case("two claims and three documents", (t([[[1.0, 0.0], [0.0, 1.0]], [[0.8, 0.6], [0.0, -1.0]]]),
                                             t([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]]), 20.0),
             hint="the softmax runs over one document's m views (the last axis of the (Q, N, m) cosines): a "
                  "document's score must not depend on the other documents"),
    ]
    return check("Exercise 2 (the score over the views)", poly_score, poly_scores, cases)
