"""Notebook 05's checks: the solution and the package's own function pass; each named wrong version fails with
the hint for its mistake; the read-off turns away what cannot be an nDCG@10 before any scoring, and no guess
passes it (on the toy set, with a tiny stand-in for the cross-encoder)."""

import numpy as np
import pytest
import torch

from xencoder_lab import metrics
from xencoder_lab.cross_encoder import rerank
from xencoder_lab.data import document_text
from xencoder_lab.exercises import nb05
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.solutions import nb05 as solutions


def rerank_lowest_first(run, scores, depth):
    return {q: sorted(r[:depth], key=lambda d: scores[q][d]) + r[depth:] for q, r in run.items()}


def rerank_tail_dropped(run, scores, depth):
    return {q: sorted(r[:depth], key=lambda d: -scores[q][d]) for q, r in run.items()}


def rerank_whole_ranking(run, scores, depth):
    return {q: sorted(r, key=lambda d: -scores[q].get(d, -np.inf)) for q, r in run.items()}


def rerank_one_short(run, scores, depth):
    return solutions.rerank_top(run, scores, depth - 1)


def rerank_one_deep(run, scores, depth):
    return {q: sorted(r[:depth + 1], key=lambda d: -scores[q].get(d, -np.inf)) + r[depth + 1:] for q, r in run.items()}


def rerank_ties_by_id(run, scores, depth):
    return {q: [d for _, d in sorted(((scores[q][d], d) for d in r[:depth]), reverse=True)] + r[depth:]
            for q, r in run.items()}


def rerank_ascending_then_reversed(run, scores, depth):
    return {q: sorted(r[:depth], key=lambda d: scores[q][d])[::-1] + r[depth:] for q, r in run.items()}


def rerank_by_position(run, scores, depth):
    return {q: sorted((r[i] for i in range(depth)), key=lambda d: -scores[q][d]) + r[depth:] for q, r in run.items()}


def min_max(scores):
    low, high = min(scores.values()), max(scores.values())
    return {d: (x - low) / (high - low) for d, x in scores.items()}


def fuse_raw_scores(first, second, weight):
    return {q: {d: weight * second[q][d] + (1 - weight) * first[q][d] for d in first[q]} for q in first}


def fuse_weight_swapped(first, second, weight):
    return solutions.fuse_min_max(first, second, 1 - weight)


def fuse_over_the_whole_run(first, second, weight):
    def over_run(run):
        values = [x for scores in run.values() for x in scores.values()]
        low, high = min(values), max(values)
        return {q: {d: (x - low) / (high - low) for d, x in scores.items()} for q, scores in run.items()}

    n1, n2 = over_run(first), over_run(second)
    return {q: {d: weight * n2[q][d] + (1 - weight) * n1[q][d] for d in n1[q]} for q in first}


def fuse_dividing_by_zero(first, second, weight):
    n1, n2 = {q: min_max(s) for q, s in first.items()}, {q: min_max(s) for q, s in second.items()}
    return {q: {d: weight * n2[q][d] + (1 - weight) * n1[q][d] for d in n1[q]} for q in first}


def fuse_numpy_nan(first, second, weight):
    def nan_min_max(scores):
        x = np.array(list(scores.values()))
        with np.errstate(invalid="ignore"):
            return dict(zip(scores, (x - x.min()) / (x.max() - x.min())))

    n1, n2 = {q: nan_min_max(s) for q, s in first.items()}, {q: nan_min_max(s) for q, s in second.items()}
    return {q: {d: float(weight * n2[q][d] + (1 - weight) * n1[q][d]) for d in n1[q]} for q in first}


def test_solutions_and_the_package_pass(capsys):
    assert nb05.check_rerank_top(solutions.rerank_top) is True
    assert nb05.check_rerank_top(rerank) is True
    assert nb05.check_fuse_min_max(solutions.fuse_min_max) is True
    assert nb05.check_fuse_min_max(nb05.package_fuse_min_max) is True


@pytest.mark.parametrize("wrong, words", [
    (rerank_lowest_first, "highest first"),
    (rerank_tail_dropped, "the documents below them stay"),
    (rerank_whole_ranking, "only the top `depth` candidates are reordered"),
    (rerank_one_short, "rank `depth` is reranked"),
    (rerank_one_deep, "rank `depth` + 1 is not"),
    (rerank_ties_by_id, "not their ids' order"),
    (rerank_ascending_then_reversed, "keep their first-stage order"),
    (rerank_by_position, "fewer than `depth` candidates"),
])
def test_rerank_mistakes_are_named(wrong, words, capsys):
    assert nb05.check_rerank_top(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (fuse_raw_scores, "min-max each stage's scores"),
    (fuse_weight_swapped, "the weight a goes on the second stage"),
    (fuse_over_the_whole_run, "normalise each query over its own candidates"),
    (fuse_dividing_by_zero, "no division by zero"),
    (fuse_numpy_nan, "max - min is 0"),
])
def test_fusion_mistakes_are_named(wrong, words, capsys):
    assert nb05.check_fuse_min_max(wrong) is False
    assert words in capsys.readouterr().out


class WordOverlap(torch.nn.Module):
    """A stand-in for the cross-encoder: a pair's score is the number of words the query and the document share."""

    def __init__(self):
        super().__init__()
        self.max_length = 256
        self.weight = torch.nn.Parameter(torch.zeros(1))  # something for the cache's fingerprint

    def score(self, queries, docs, batch_size=32, show_progress=None):
        queries = [queries] * len(docs) if isinstance(queries, str) else queries
        return np.array([len(set(q.lower().split()) & set(d.lower().split())) for q, d in zip(queries, docs)],
                        dtype=np.float32)


def test_union_pool_turns_away_what_is_no_ndcg_before_any_work(capsys):
    assert nb05.check_union_pool(None, None, None, None) is None
    assert "not answered yet" in capsys.readouterr().out
    for absurd in (7.0, -0.2, "0.8", True):
        assert nb05.check_union_pool(absurd, None, None, None) is False  # nothing to score with: no work was done
        assert "between 0 and 1" in capsys.readouterr().out


def test_union_pool_takes_no_guess(toy, capsys):
    k = len(toy.corpus)
    runs = {"BM25": Pipeline(toy, "bm25").run(depth=1, k=k)}
    runs["fine-tuned bi-encoder"] = {q: ranking[::-1] for q, ranking in runs["BM25"].items()}  # another order
    cross = WordOverlap()
    pool = {q: list(dict.fromkeys(runs["BM25"][q][:50] + runs["fine-tuned bi-encoder"][q][:50])) for q in toy.queries}
    scores = {q: dict(zip(p, cross.score(toy.queries[q], [document_text(toy.corpus[d]) for d in p]).tolist()))
              for q, p in pool.items()}
    expected = metrics.evaluate(rerank(pool, scores, 100), toy.qrels, ["ndcg@10"])["ndcg@10"]
    assert nb05.check_union_pool(round(expected, 3), cross, toy, runs) is True
    capsys.readouterr()
    for guess in (0.0, 0.5, 1.0):
        nb05.check_union_pool(guess, cross, toy, runs)
    assert capsys.readouterr().out.count(": correct") <= 1  # at most one of three spread guesses
