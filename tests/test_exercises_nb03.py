"""Notebook 03's checks: the solution and the package's own function pass; each named wrong version fails with
the hint for its mistake; the read-off accepts the share it asks for and no spread guess."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xencoder_lab.exercises import nb03
from xencoder_lab.losses import in_batch_negatives_loss
from xencoder_lab.protocol import relevant_documents
from xencoder_lab.solutions import nb03 as solutions


def loss_sums(q, d, t):
    return F.cross_entropy(q @ d.T / t, torch.arange(len(q)), reduction="sum")


def loss_labels_zero(q, d, t):
    return F.cross_entropy(q @ d.T / t, torch.zeros(len(q), dtype=torch.long))


def loss_no_temperature(q, d, t):
    return F.cross_entropy(q @ d.T, torch.arange(len(q)))


def loss_times_temperature(q, d, t):
    return F.cross_entropy(q @ d.T * t, torch.arange(len(q)))


def loss_softmax_over_columns(q, d, t):
    log_probs = (q @ d.T / t).log_softmax(dim=0)
    return -log_probs.diagonal().mean()


def loss_ignores_hard_negatives(q, d, t):
    return F.cross_entropy(q @ d[: len(q)].T / t, torch.arange(len(q)))


def loss_labels_for_every_row(q, d, t):
    return F.cross_entropy(q @ d.T / t, torch.arange(len(d)))


def kept(scores, relevant, line, below=np.less):
    return [int(c) for c in np.argsort(-scores, kind="stable") if c not in relevant and below(scores[c], line)]


def negative_lowest(scores, positive, relevant, margin=0.95):
    return kept(scores, relevant, margin * scores[positive])[-1]


def negative_no_margin(scores, positive, relevant, margin=0.95):
    return kept(scores, relevant, np.inf)[0]


def negative_only_positive_excluded(scores, positive, relevant, margin=0.95):
    return kept(scores, {positive}, margin * scores[positive])[0]


def negative_additive_margin(scores, positive, relevant, margin=0.95):
    return kept(scores, relevant, scores[positive] - (1 - margin))[0]


def negative_fixed_margin(scores, positive, relevant, margin=0.95):
    return kept(scores, relevant, 0.95 * scores[positive])[0]


def negative_on_the_line_kept(scores, positive, relevant, margin=0.95):
    return kept(scores, relevant, margin * scores[positive], below=np.less_equal)[0]


def test_solutions_and_the_package_pass(capsys):
    assert nb03.check_info_nce_loss(solutions.info_nce_loss) is True
    assert nb03.check_info_nce_loss(in_batch_negatives_loss) is True
    assert nb03.check_hard_negative(solutions.hard_negative) is True


@pytest.mark.parametrize("wrong, words", [
    (loss_sums, "the mean over queries"),
    (loss_labels_zero, "the diagonal"),
    (loss_no_temperature, "divide the scores by the temperature"),
    (loss_times_temperature, "divide the scores by the temperature"),
    (loss_softmax_over_columns, "along each row (dim=1)"),
    (loss_ignores_hard_negatives, "they join every query's softmax"),
    (loss_labels_for_every_row, "the labels stay arange(B)"),
])
def test_loss_mistakes_are_named(wrong, words, capsys):
    assert nb03.check_info_nce_loss(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (negative_lowest, "the highest-scoring document"),
    (negative_no_margin, "a false negative"),
    (negative_only_positive_excluded, "not only the positive"),
    (negative_additive_margin, "the margin is a ratio"),
    (negative_fixed_margin, "use the margin argument"),
    (negative_on_the_line_kept, "strictly below"),
])
def test_mining_mistakes_are_named(wrong, words, capsys):
    assert nb03.check_hard_negative(wrong) is False
    assert words in capsys.readouterr().out


def test_prior_read_off_takes_the_share_and_no_guess(toy, capsys):
    docs = list(toy.corpus)
    run = {q: docs[i:] + docs[:i] for i, q in enumerate(toy.queries)}  # query i: the corpus from document i on
    share = np.mean([len(set(run[q][:10]) & relevant_documents(toy)) / 10 for q in toy.queries])
    assert nb03.check_prior(None, run, toy, toy) is None
    assert "not answered yet" in capsys.readouterr().out
    assert nb03.check_prior(round(share, 3), run, toy, toy) is True
    for absurd in (1.5, -0.1, "a lot"):
        assert nb03.check_prior(absurd, object(), object(), object()) is False  # rejected before any work
        assert "between 0 and 1" in capsys.readouterr().out
    for guess in (0.0, 0.5, 1.0):
        nb03.check_prior(guess, run, toy, toy)
    assert capsys.readouterr().out.count(": correct") <= 1
