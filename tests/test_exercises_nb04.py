"""Notebook 04's checks: the solution and the package's own function pass; each named wrong version fails with
the hint for its mistake; the read-off turns away what cannot be an nDCG@10 before loading a model, and no guess
passes it (on the toy set, with a tiny stand-in for the checkpoint)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xencoder_lab import course_models, losses, metrics
from xencoder_lab.cross_encoder import rerank
from xencoder_lab.data import document_text
from xencoder_lab.exercises import nb04
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.solutions import nb04 as solutions

CLS, SEP = 101, 102


def laid_out(query, doc, first_sep_type=0, last_sep_type=1):
    return {"input_ids": [CLS, *query, SEP, *doc, SEP],
            "token_type_ids": [0] * (len(query) + 1) + [first_sep_type] + [1] * len(doc) + [last_sep_type]}


def pair_first_sep_in_document(query_ids, doc_ids, max_length):
    return laid_out(query_ids, doc_ids, first_sep_type=1)


def pair_last_sep_in_query(query_ids, doc_ids, max_length):
    return laid_out(query_ids, doc_ids, last_sep_type=0)


def pair_room_for_two_specials(query_ids, doc_ids, max_length):
    return solutions.pair_input(query_ids, doc_ids, max_length + 1)


def pair_room_for_four_specials(query_ids, doc_ids, max_length):
    return solutions.pair_input(query_ids, doc_ids, max_length - 1)


def pair_query_cut_first(query_ids, doc_ids, max_length):
    over = max(0, len(query_ids) + len(doc_ids) + 3 - max_length)
    query = query_ids[:len(query_ids) - over]  # the query gives up its tokens first
    return laid_out(query, doc_ids[:max_length - 3 - len(query)])


def pair_document_cut_from_start(query_ids, doc_ids, max_length):
    room = max_length - 3 - len(query_ids)
    return laid_out(query_ids, doc_ids[len(doc_ids) - room:] if len(doc_ids) > room else doc_ids)


def pair_cut_once(query_ids, doc_ids, max_length):
    doc = doc_ids[:-1] if len(query_ids) + len(doc_ids) + 3 > max_length else doc_ids
    return laid_out(query_ids, doc)


def pair_query_always_whole(query_ids, doc_ids, max_length):
    return laid_out(query_ids, doc_ids[:max(0, max_length - 3 - len(query_ids))])


def listwise_over_groups(logits):
    return -F.log_softmax(logits, dim=0)[:, 0].mean()


def listwise_positive_last(logits):
    return -F.log_softmax(logits, dim=1)[:, -1].mean()


def listwise_summed(logits):
    return -F.log_softmax(logits, dim=1)[:, 0].sum()


def listwise_log_of_softmax(logits):
    return -torch.log(torch.exp(logits[:, 0]) / torch.exp(logits).sum(1)).mean()


def labels_for(logits, column=0):
    labels = torch.zeros_like(logits)
    labels[:, column] = 1.0
    return labels


def bce_summed_per_group(logits, pos_weight=None):
    return F.binary_cross_entropy_with_logits(logits, labels_for(logits), reduction="sum") / len(logits)


def bce_positive_last(logits, pos_weight=None):
    weight = None if pos_weight is None else torch.tensor(pos_weight)
    return F.binary_cross_entropy_with_logits(logits, labels_for(logits, -1), pos_weight=weight)


def bce_weight_ignored(logits, pos_weight=None):
    return F.binary_cross_entropy_with_logits(logits, labels_for(logits))


def bce_weight_on_negatives(logits, pos_weight=None):
    y, p = labels_for(logits), 1.0 if pos_weight is None else pos_weight
    return (y * F.softplus(-logits) + p * (1 - y) * F.softplus(logits)).mean()


def bce_weighted_mean(logits, pos_weight=None):
    y, p = labels_for(logits), 1.0 if pos_weight is None else pos_weight
    weights = p * y + (1 - y)
    return ((p * y * F.softplus(-logits) + (1 - y) * F.softplus(logits)).sum() / weights.sum())


def bce_through_sigmoid(logits, pos_weight=None):
    weight = labels_for(logits) * ((pos_weight or 1.0) - 1) + 1
    return F.binary_cross_entropy(torch.sigmoid(logits), labels_for(logits), weight=weight)


def test_solutions_and_the_package_pass(capsys):
    assert nb04.check_pair_input(solutions.pair_input) is True
    assert nb04.check_pair_input(nb04.package_pair_input) is True
    assert nb04.check_listwise_cross_entropy(solutions.listwise_cross_entropy) is True
    assert nb04.check_listwise_cross_entropy(losses.listwise_loss) is True
    assert nb04.check_group_bce(solutions.group_bce) is True
    assert nb04.check_group_bce(losses.group_bce_loss) is True


@pytest.mark.parametrize("wrong, words", [
    (pair_first_sep_in_document, "token type 0 for [CLS], the query and the first [SEP]"),
    (pair_last_sep_in_query, "1 for the document and the last [SEP]"),
    (pair_room_for_four_specials, "this pair fits as it is"),
    (pair_room_for_two_specials, "[CLS] and both [SEP]s included"),
    (pair_query_cut_first, "keep the whole query"),
    (pair_document_cut_from_start, "drop the document's last token"),
    (pair_cut_once, "keep cutting the document from its end until the pair fits"),
    (pair_query_always_whole, "a long query is cut too"),
])
def test_pair_mistakes_are_named(wrong, words, capsys):
    assert nb04.check_pair_input(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (listwise_over_groups, "the softmax runs along the row (dim=1)"),
    (listwise_positive_last, "the positive is column 0"),
    (listwise_summed, "not their sum"),
    (listwise_log_of_softmax, "use torch.log_softmax"),
])
def test_listwise_mistakes_are_named(wrong, words, capsys):
    assert nb04.check_listwise_cross_entropy(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (bce_summed_per_group, "the mean over every pair of every group"),
    (bce_positive_last, "label 1 for column 0"),
    (bce_weight_ignored, "pos_weight multiplies the positive's term"),
    (bce_weight_on_negatives, "pos_weight multiplies the positive's term only"),
    (bce_weighted_mean, "not by the sum of the weights"),
    (bce_through_sigmoid, "work on the logits"),
])
def test_bce_mistakes_are_named(wrong, words, capsys):
    assert nb04.check_group_bce(wrong) is False
    assert words in capsys.readouterr().out


class WordOverlap(torch.nn.Module):
    """A stand-in for the checkpoint: a pair's score is the number of query words among the document's first
    ``max_length // 8`` words, so the cut changes the scores."""

    def __init__(self):
        super().__init__()
        self.max_length = 256
        self.weight = torch.nn.Parameter(torch.zeros(1))  # something for the cache's fingerprint

    def score(self, queries, docs, batch_size=32, show_progress=None):
        queries = [queries] * len(docs) if isinstance(queries, str) else queries
        return np.array([len(set(q.lower().split()) & set(d.lower().split()[:self.max_length // 8]))
                         for q, d in zip(queries, docs)], dtype=np.float32)


def test_short_pairs_turns_away_what_is_no_ndcg_before_any_work(capsys):
    assert nb04.check_short_pairs(None, None, None, 20) is None
    assert "not answered yet" in capsys.readouterr().out
    for absurd in (7.0, -0.2, "0.8", True):
        assert nb04.check_short_pairs(absurd, None, None, 20) is False  # no dataset: it would fail if it computed
        assert "between 0 and 1" in capsys.readouterr().out


def test_short_pairs_takes_no_guess(toy, monkeypatch, capsys):
    stand_in = WordOverlap()
    monkeypatch.setattr(course_models, "load_cross_encoder", lambda: stand_in)
    first_stage = Pipeline(toy, "bm25").run(depth=1, k=len(toy.corpus))
    short = WordOverlap()
    short.max_length = 128
    scores = {}
    for q, ranking in first_stage.items():
        top = ranking[:10]
        scores[q] = dict(zip(top, short.score(toy.queries[q], [document_text(toy.corpus[d]) for d in top]).tolist()))
    expected = metrics.evaluate(rerank(first_stage, scores, 10), toy.qrels, ["ndcg@10"])["ndcg@10"]
    assert nb04.check_short_pairs(round(expected, 3), toy, first_stage, 10) is True
    assert stand_in.max_length == 128
    capsys.readouterr()
    for guess in (0.0, 0.5, 1.0):
        nb04.check_short_pairs(guess, toy, first_stage, 10)
    assert capsys.readouterr().out.count(": correct") <= 1  # at most one of three spread guesses
