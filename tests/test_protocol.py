"""Tests for xencoder_lab.protocol: seen and unseen claims, validation carved by document, the three columns."""

import pytest

from xencoder_lab.data import Dataset
from xencoder_lab.protocol import relevant_documents, split_seen, split_validation_by_document


def _ds(qrels, split="test"):
    corpus = {d: {"title": "", "text": d} for judged in qrels.values() for d in judged}
    return Dataset("made-up", split, corpus, {q: q for q in qrels}, qrels)


def test_seen_and_unseen():
    train = _ds({"t1": {"a": 1}, "t2": {"b": 1, "x": 0}}, "train")
    test = _ds({"q1": {"a": 1, "c": 1}, "q2": {"c": 1}, "q3": {"x": 1}, "q4": {"b": 1}})
    seen, unseen = split_seen(test, train)
    assert list(seen.queries) == ["q1", "q4"] and list(unseen.queries) == ["q2", "q3"]  # x was judged 0 in train
    assert seen.corpus is test.corpus and unseen.split == "test-unseen"


def test_validation_by_document_never_shares_a_relevant_document():
    qrels = {f"q{i}": {f"d{i // 3}": 1, f"e{i}": 1} for i in range(30)}  # groups of 3 claims share a document
    rest, val = split_validation_by_document(_ds(qrels, "train"), n=7, seed=1)
    assert 7 <= len(val.queries) <= 9 and len(val.queries) % 3 == 0  # whole groups only
    assert not relevant_documents(rest) & relevant_documents(val)
    assert set(rest.queries) | set(val.queries) == set(qrels)
    assert split_validation_by_document(_ds(qrels, "train"), n=7, seed=1)[1].queries == val.queries
    with pytest.raises(ValueError, match="n=30"):
        split_validation_by_document(_ds(qrels, "train"), n=30)


def test_scifact_counts(scifact_test):
    from xencoder_lab.data import load_beir

    train = load_beir("scifact", "train", download=False)
    seen, unseen = split_seen(scifact_test, train)
    assert (len(seen.queries), len(unseen.queries)) == (196, 104)  # COURSE.md, Evaluation protocol
    assert len(relevant_documents(train)) == 565
    rest, val = split_validation_by_document(train, n=80)
    assert len(val.queries) >= 80 and not relevant_documents(rest) & relevant_documents(val)
