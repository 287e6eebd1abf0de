"""Notebook 01's checks: the solution and the package's own function pass; each named wrong version fails with
the hint for its mistake; no guess passes the read-off."""

import math

import pytest

from xencoder_lab import metrics
from xencoder_lab.exercises import nb01
from xencoder_lab.solutions import nb01 as solutions


def relevant(judged):
    return {d for d, g in judged.items() if g > 0}


def recall_off_by_one(ranking, judged, k):
    return len(relevant(judged) & set(ranking[: k - 1])) / max(len(relevant(judged)), 1)


def recall_counts_grade_zero(ranking, judged, k):
    return len(set(judged) & set(ranking[:k])) / len(judged)


def recall_divides_by_zero(ranking, judged, k):
    return len(relevant(judged) & set(ranking[:k])) / len(relevant(judged))


def dcg(gains):
    return sum(g / math.log2(i + 1) for i, g in enumerate(gains, start=1))


def ndcg_log2_rank(ranking, judged):
    gains = [judged.get(d, 0) for d in ranking[:10]]
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
    score = sum(g / math.log2(i) if i > 1 else g for i, g in enumerate(gains, start=1))
    best = sum(g / math.log2(i) if i > 1 else g for i, g in enumerate(ideal, start=1))
    return score / best if best else 0.0


def ndcg_binary_gain(ranking, judged):
    gains = [1 if judged.get(d, 0) > 0 else 0 for d in ranking[:10]]
    ideal = dcg([1] * min(10, len(relevant(judged))))
    return dcg(gains) / ideal if ideal else 0.0


def ndcg_ideal_not_cut(ranking, judged):
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True))
    return dcg([judged.get(d, 0) for d in ranking[:10]]) / ideal if ideal else 0.0


def ndcg_cut_at_eleven(ranking, judged):
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:10])
    return dcg([judged.get(d, 0) for d in ranking[:11]]) / ideal if ideal else 0.0


def ndcg_no_zero_guard(ranking, judged):
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:10])
    return dcg([judged.get(d, 0) for d in ranking[:10]]) / ideal


def test_solutions_and_the_package_pass(capsys):
    assert nb01.check_recall_at_k(solutions.recall_at_k) is True
    assert nb01.check_recall_at_k(metrics.recall) is True
    assert nb01.check_ndcg_at_10(solutions.ndcg_at_10) is True
    assert nb01.check_ndcg_at_10(lambda ranking, judged: metrics.ndcg(ranking, judged, k=10)) is True


@pytest.mark.parametrize("wrong, words", [
    (recall_off_by_one, "rank k is in"),
    (recall_counts_grade_zero, "grade of 0"),
    (recall_divides_by_zero, "not a division by zero"),
])
def test_recall_mistakes_are_named(wrong, words, capsys):
    assert nb01.check_recall_at_k(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (ndcg_log2_rank, "log2(i + 1)"),
    (ndcg_binary_gain, "the gain is the grade"),
    (ndcg_ideal_not_cut, "ideal DCG is also cut at 10"),
    (ndcg_cut_at_eleven, "only the top 10 counts"),
    (ndcg_no_zero_guard, "ideal DCG is 0"),
])
def test_ndcg_mistakes_are_named(wrong, words, capsys):
    assert nb01.check_ndcg_at_10(wrong) is False
    assert words in capsys.readouterr().out


def test_titles_read_off_takes_no_guess(toy, capsys):
    assert nb01.check_titles(None, toy) is None
    for guess in (0.0, 0.5, 1.0):
        nb01.check_titles(guess, toy)
    said = capsys.readouterr().out
    assert said.count("correct") <= 1  # at most one of three spread guesses can be within 0.001
