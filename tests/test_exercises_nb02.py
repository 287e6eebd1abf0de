"""Notebook 02's checks: the solution and the package's own function pass; each named wrong version fails with
the hint for its mistake; the read-off rejects an unanswered or absurd answer without encoding anything."""

from functools import partial

import numpy as np
import pytest

from xencoder_lab.bi_encoder import pool
from xencoder_lab.exercises import nb02
from xencoder_lab.solutions import nb02 as solutions


def pool_averages_padding(h, mask):
    return h.mean(1)


def pool_divides_by_length(h, mask):
    return (h * mask[..., None]).sum(1) / h.shape[1]


def pool_sums_padding(h, mask):
    return h.sum(1) / mask.sum(1, keepdim=True)


def pool_divides_by_zero(h, mask):  # the notebook's by-hand formula, unguarded
    return (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


def pool_over_dimensions(h, mask):
    return (h * mask[..., None]).mean(2)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def ranked(scores, doc_ids, top):
    return [[doc_ids[j] for j in row] for row in top], np.take_along_axis(scores, top, axis=1)


def top_k_ascending(q, d, doc_ids, k):
    scores = unit(q) @ unit(d).T
    return ranked(scores, doc_ids, np.argsort(scores, axis=1)[:, :k])


def top_k_one_short(q, d, doc_ids, k):
    scores = unit(q) @ unit(d).T
    return ranked(scores, doc_ids, np.argsort(-scores, axis=1)[:, : k - 1])


def top_k_rows_not_ids(q, d, doc_ids, k):
    scores = unit(q) @ unit(d).T
    top = np.argsort(-scores, axis=1)[:, :k]
    return top.tolist(), np.take_along_axis(scores, top, axis=1)


def top_k_raw_dot(q, d, doc_ids, k):
    scores = q @ d.T
    return ranked(scores, doc_ids, np.argsort(-scores, axis=1)[:, :k])


def top_k_documents_only(q, d, doc_ids, k):
    scores = q @ unit(d).T
    return ranked(scores, doc_ids, np.argsort(-scores, axis=1)[:, :k])


def test_solutions_and_the_package_pass(capsys):
    assert nb02.check_mean_pool(solutions.mean_pool) is True
    assert nb02.check_mean_pool(partial(pool, how="mean")) is True
    assert nb02.check_cosine_top_k(solutions.cosine_top_k) is True


@pytest.mark.parametrize("wrong, words", [
    (pool_over_dimensions, "over the tokens (dim 1)"),
    (pool_averages_padding, "number of real tokens"),
    (pool_divides_by_length, "not by the padded length"),
    (pool_sums_padding, "multiply them by the mask"),
    (pool_divides_by_zero, "zeros, not NaN"),
])
def test_mean_pool_mistakes_are_named(wrong, words, capsys):
    assert nb02.check_mean_pool(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (top_k_ascending, "from the highest score down"),
    (top_k_one_short, "keep the first k"),
    (top_k_rows_not_ids, "as ids from doc_ids"),
    (top_k_raw_dot, "must not win on its length"),
    (top_k_documents_only, "normalise the queries too"),
])
def test_cosine_top_k_mistakes_are_named(wrong, words, capsys):
    assert nb02.check_cosine_top_k(wrong) is False
    assert words in capsys.readouterr().out


def test_max_length_read_off_rejects_absurd_answers_before_encoding(monkeypatch, capsys):
    def no_model(*args, **kwargs):
        raise AssertionError("the check built a model for an answer it could reject at once")

    monkeypatch.setattr(nb02, "BiEncoder", no_model)
    assert nb02.check_max_length(None, object()) is None
    assert "not answered yet" in capsys.readouterr().out
    for absurd in (1.5, -0.2, 0, "0.6", True):
        assert nb02.check_max_length(absurd, object()) is False
        assert "between 0 and 1" in capsys.readouterr().out
