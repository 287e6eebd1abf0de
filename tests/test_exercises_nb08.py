"""Notebook 08's checks: the solutions and the package's own functions pass; each named wrong version fails with
the hint for its mistake."""

import pytest
import torch
import torch.nn.functional as F

from xencoder_lab.exercises import nb08
from xencoder_lab.solutions import nb08 as solutions


def similarities(Q, D):
    return torch.einsum("bid,njd->bnij", F.normalize(Q, dim=-1), F.normalize(D, dim=-1))  # (B, N, Lq, Ld)


def maxsim_wrong_axis(Q, query_mask, D, doc_mask):
    sim = similarities(Q, D).masked_fill(~doc_mask[None, :, None, :], float("-inf"))
    return sim.max(-2).values.sum(-1)  # best over the query's vectors, summed over the document's tokens


def maxsim_not_normalised(Q, query_mask, D, doc_mask):
    sim = torch.einsum("bid,njd->bnij", Q, D).masked_fill(~doc_mask[None, :, None, :], float("-inf"))
    return (sim.max(-1).values * query_mask[:, None, :]).sum(-1)


def maxsim_no_document_mask(Q, query_mask, D, doc_mask):
    return (similarities(Q, D).max(-1).values * query_mask[:, None, :]).sum(-1)


def maxsim_multiplied_by_the_mask(Q, query_mask, D, doc_mask):
    sim = similarities(Q, D) * doc_mask[None, :, None, :]
    return (sim.max(-1).values * query_mask[:, None, :]).sum(-1)


def maxsim_sums_query_padding(Q, query_mask, D, doc_mask):
    sim = similarities(Q, D).masked_fill(~doc_mask[None, :, None, :], float("-inf"))
    return sim.max(-1).values.sum(-1)


def query_marker_first(ids, marker, mask_id, length=32):
    ids = [marker] + ids[: length - 2] + ids[-1:] if len(ids) > length - 1 else [marker] + ids
    return ids + [mask_id] * (length - len(ids)), [1] * len(ids) + [0] * (length - len(ids))


def query_attends_to_masks(ids, marker, mask_id, length=32):
    ids = ids[:1] + [marker] + ids[1:length - 2] + ids[-1:] if len(ids) > length - 1 else ids[:1] + [marker] + ids[1:]
    return ids + [mask_id] * (length - len(ids)), [1] * length


def query_padded_before_the_marker(ids, marker, mask_id, length=32):
    ids = ids[: length - 2] + ids[-1:] if len(ids) > length - 1 else ids
    padded = ids + [mask_id] * (length - len(ids))  # the marker, added after, makes it length + 1
    return padded[:1] + [marker] + padded[1:], [1] * (len(ids) + 1) + [0] * (length - len(ids))


def query_not_cut(ids, marker, mask_id, length=32):
    ids = ids[:1] + [marker] + ids[1:]
    return ids + [mask_id] * (length - len(ids)), [1] * len(ids) + [0] * (length - len(ids))


def query_cut_drops_sep(ids, marker, mask_id, length=32):
    ids = (ids[:1] + [marker] + ids[1:])[:length]
    return ids + [mask_id] * (length - len(ids)), [1] * len(ids) + [0] * (length - len(ids))


def query_cut_without_the_marker(ids, marker, mask_id, length=32):
    ids = ids[: length - 1] + ids[-1:] if len(ids) > length else ids  # forgets the place the marker takes
    ids = ids[:1] + [marker] + ids[1:]
    return ids + [mask_id] * (length - len(ids)), [1] * len(ids) + [0] * (length - len(ids))


def test_solutions_and_the_package_pass(capsys):
    assert nb08.check_maxsim_scores(solutions.maxsim_scores) is True
    assert nb08.check_maxsim_scores(nb08._maxsim) is True
    assert nb08.check_query_features(solutions.query_features) is True
    assert nb08.check_query_features(nb08._features) is True


@pytest.mark.parametrize("wrong, words", [
    (maxsim_wrong_axis, "the max over the last axis"),
    (maxsim_not_normalised, "normalise every token vector"),
    (maxsim_no_document_mask, "must never be a best match"),
    (maxsim_multiplied_by_the_mask, "fill it with -inf before the max"),
    (maxsim_sums_query_padding, "leave it out of the sum"),
])
def test_maxsim_mistakes_are_named(wrong, words, capsys):
    assert nb08.check_maxsim_scores(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (query_marker_first, "[CLS], the marker"),
    (query_attends_to_masks, "0 on every [MASK]"),
    (query_padded_before_the_marker, "exactly length tokens long"),
    (query_not_cut, "keeping [CLS] first and [SEP] last"),
    (query_cut_drops_sep, "keeping [CLS] first and [SEP] last"),
    (query_cut_without_the_marker, "the marker counted"),
])
def test_query_mistakes_are_named(wrong, words, capsys):
    assert nb08.check_query_features(wrong) is False
    assert words in capsys.readouterr().out


def test_the_multiply_bug_passes_while_similarities_are_positive(capsys):
    # the case that exposes it is the one with every real similarity below 0, not an earlier one
    nb08.check_maxsim_scores(maxsim_multiplied_by_the_mask)
    assert "On every real similarity below 0" in capsys.readouterr().out
