"""Tests for xencoder_lab.protocol: seen and unseen claims, validation carved by document, the three columns."""

from collections import defaultdict

import pytest

from xencoder_lab import metrics
from xencoder_lab.data import TOY_PATH, Dataset, load_beir
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.protocol import (
    columns,
    evaluate_columns,
    evaluate_systems,
    relevant_documents,
    split_seen,
    split_validation_by_document,
)


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


def _columns():
    """The toy as "all", its claims whose answers a made-up train split never cites as "unseen" (the same corpus
    object), and a "CACM" of 150 made-up abstracts: more than the 100 a run ranks."""
    toy = load_beir("toy", path=TOY_PATH)
    train = _ds({"t1": {"d04": 1}, "t2": {"d14": 1}}, "train")  # cites q2's, q5's and q6's answers
    texts = [f"abstract {i} on {'compilers' if i % 2 else 'operating systems'} and topic {i % 7}" for i in range(150)]
    other = Dataset("other", "test", {f"o{i}": {"title": "", "text": t} for i, t in enumerate(texts)},
                    {"c1": "compilers topic 3", "c2": "operating systems topic 4"}, {"c1": {"o3": 1}, "c2": {"o4": 1}})
    return columns(toy, train, other)


def _bm25(ds):
    return {"BM25": Pipeline(ds, "bm25")}


class _Recorder:
    """A system that records (dataset, depth, k) of each run and ranks its corpus in stored order."""

    def __init__(self, ds, calls):
        self.ds, self.calls = ds, calls

    def run(self, depth, k, show_progress=None):
        self.calls.append((self.ds.name, depth, k))
        return {q: list(self.ds.corpus)[:k] for q in self.ds.queries}


def test_evaluate_systems_builds_once_per_corpus():
    cols, built_over = _columns(), []
    assert list(cols["unseen"].queries) == ["q1", "q3", "q4"] and cols["unseen"].corpus is cols["all"].corpus
    built, runs, scores = evaluate_systems(lambda ds: built_over.append(ds) or _bm25(ds), cols)
    assert built_over == [cols["all"], cols["CACM"]]  # not the unseen column: its corpus is all's
    assert list(built) == ["all", "CACM"] and built["all"]["BM25"].ds is cols["all"]
    assert list(runs["BM25"]) == list(scores["BM25"]) == ["all", "unseen", "CACM"]  # the order of the columns


def test_evaluate_systems_gives_what_a_build_over_each_column_gives():
    cols = _columns()
    _, runs, scores = evaluate_systems(_bm25, cols)
    for column, ds in cols.items():
        _, alone, alone_scores = evaluate_systems(_bm25, {column: ds})  # built over this column itself
        assert runs["BM25"][column] == alone["BM25"][column] and list(runs["BM25"][column]) == list(ds.queries)
        assert scores["BM25"][column] == alone_scores["BM25"][column]
    unseen = Pipeline(cols["unseen"], "bm25").run(depth=16, k=16)  # the toy's 16 abstracts, all ranked
    assert runs["BM25"]["unseen"] == unseen
    assert scores["BM25"]["unseen"] == metrics.evaluate(unseen, cols["unseen"].qrels, ["ndcg@10"])["ndcg@10"]
    assert scores["BM25"]["unseen"] != scores["BM25"]["all"]  # each column scored on its own qrels


def test_evaluate_systems_gives_each_system_its_depth_capped_at_the_corpus():
    calls = []
    build = lambda ds: {"deep": _Recorder(ds, calls), "shallow": _Recorder(ds, calls)}  # noqa: E731
    evaluate_systems(build, _columns(), depth=defaultdict(lambda: 100, {"shallow": 10}))
    assert calls == [("toy", 16, 16), ("toy", 10, 16), ("other", 100, 100), ("other", 10, 100)]
    calls.clear()
    evaluate_systems(build, _columns(), depth=12)
    assert calls == [("toy", 12, 16), ("toy", 12, 16), ("other", 12, 100), ("other", 12, 100)]
    with pytest.raises(ValueError, match="no depth for 'shallow'"):
        evaluate_systems(build, _columns(), depth={"deep": 5})


def test_evaluate_systems_builds_again_for_queries_no_column_over_its_corpus_holds():
    toy = load_beir("toy", path=TOY_PATH)
    rest, val = split_validation_by_document(toy, n=2)  # one corpus, no query in common
    assert list(evaluate_systems(_bm25, {"rest": rest, "val": val})[0]) == ["rest", "val"]  # neither holds the other
    built_over = []
    three = {"rest": rest, "val": val, "all": toy}
    built, _, _ = evaluate_systems(lambda ds: built_over.append(ds) or _bm25(ds), three)
    assert built_over == [toy] and list(built) == ["all"]  # both inside the whole split
    reworded = Dataset(toy.name, "reworded", toy.corpus, {**toy.queries, "q1": "salt"}, toy.qrels)
    built, runs, _ = evaluate_systems(_bm25, {"all": toy, "reworded": reworded})
    assert list(built) == ["all", "reworded"]  # the same ids, another query text: not the same queries
    assert runs["BM25"]["reworded"]["q1"] != runs["BM25"]["all"]["q1"]


def test_evaluate_columns_is_evaluate_systems_with_one_system():
    cols, built_over = _columns(), []
    runs, scores = evaluate_columns(lambda ds: built_over.append(ds) or Pipeline(ds, "bm25"), cols, depth=5)
    _, expected_runs, expected_scores = evaluate_systems(_bm25, cols, depth=5)
    assert len(built_over) == 2 and runs == expected_runs["BM25"] and scores == expected_scores["BM25"]
    assert evaluate_columns(lambda ds: Pipeline(ds, "bm25"), {}) == ({}, {})
