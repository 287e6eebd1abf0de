"""Notebook 07's checks: the solution and the package's own function pass; each named wrong version fails with
the hint for its mistake."""

import math

import pytest
import torch
import torch.nn.functional as F

from xencoder_lab.exercises import nb07
from xencoder_lab.poly_encoder import code_attention, poly_scores
from xencoder_lab.solutions import nb07 as solutions


def logits_of(hidden, codes):
    return torch.einsum("md,bld->bml", codes, hidden)  # (B, m, L)


def masked(logits, attention_mask):
    return logits.masked_fill(attention_mask[:, None, :] == 0, float("-inf"))


def views_mean_pooled(hidden, attention_mask, codes):  # the codes ignored
    mean = (hidden * attention_mask[..., None]).sum(1) / attention_mask.sum(1, keepdim=True)  # (B, D)
    return mean[:, None].expand(-1, len(codes), -1)


def views_softmax_over_codes(hidden, attention_mask, codes):
    return masked(logits_of(hidden, codes), attention_mask).softmax(1).nan_to_num() @ hidden


def views_scaled(hidden, attention_mask, codes):  # the transformer's 1 / sqrt(D), which these codes do not use
    logits = logits_of(hidden, codes) / math.sqrt(hidden.shape[-1])
    return masked(logits, attention_mask).softmax(-1) @ hidden


def views_padding_attended(hidden, attention_mask, codes):
    return logits_of(hidden, codes).softmax(-1) @ hidden


def views_padding_multiplied(hidden, attention_mask, codes):
    return (logits_of(hidden, codes).softmax(-1) * attention_mask[:, None, :]) @ hidden


def views_normalised(hidden, attention_mask, codes):  # the model normalises them after, not code_attention
    return F.normalize(code_attention(hidden, attention_mask, codes), dim=-1)


def cosines(q_vecs, d_emb):
    return torch.einsum("qmd,nd->qnm", q_vecs, d_emb)  # (Q, N, m)


def score_mean(q_vecs, d_emb, scale):
    return cosines(q_vecs, d_emb).mean(-1)


def score_max(q_vecs, d_emb, scale):
    return cosines(q_vecs, d_emb).amax(-1)


def score_no_scale(q_vecs, d_emb, scale):
    a = cosines(q_vecs, d_emb)
    return (a.softmax(-1) * a).sum(-1)


def score_divided_by_scale(q_vecs, d_emb, scale):
    a = cosines(q_vecs, d_emb)
    return ((a / scale).softmax(-1) * a).sum(-1)


def score_scaled_twice(q_vecs, d_emb, scale):
    a = scale * cosines(q_vecs, d_emb)
    return (a.softmax(-1) * a).sum(-1)


def score_softmax_over_documents(q_vecs, d_emb, scale):
    a = cosines(q_vecs, d_emb)
    return ((scale * a).softmax(1) * a).sum(-1)


def test_solutions_and_the_package_pass(capsys):
    assert nb07.check_code_views(solutions.code_views) is True
    assert nb07.check_code_views(code_attention) is True
    assert nb07.check_poly_score(solutions.poly_score) is True
    assert nb07.check_poly_score(poly_scores) is True


@pytest.mark.parametrize("wrong, words", [
    (views_normalised, "each of the m views is the mean"),
    (views_softmax_over_codes, "the softmax runs over the tokens"),
    (views_mean_pooled, "a code that points at a token"),
    (views_scaled, "no division by sqrt(D)"),
    (views_padding_attended, "padding gets weight 0"),
    (views_padding_multiplied, "multiplying the weights by the mask"),
])
def test_code_attention_mistakes_are_named(wrong, words, capsys):
    assert nb07.check_code_views(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (score_scaled_twice, "with a single view the score is that cosine"),
    (score_mean, "neither the mean nor the max"),
    (score_max, "neither the mean nor the max"),
    (score_no_scale, "multiply the cosines by scale inside the softmax"),
    (score_divided_by_scale, "multiply the cosines by scale inside the softmax"),
    (score_softmax_over_documents, "must not depend on the other documents"),
])
def test_score_mistakes_are_named(wrong, words, capsys):
    assert nb07.check_poly_score(wrong) is False
    assert words in capsys.readouterr().out
