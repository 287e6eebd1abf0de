"""Notebook 09's checks: the solutions and the package's own functions pass; each named wrong version fails with
the hint for its mistake; no guess passes the read-off."""

import pytest

from xencoder_lab.choose import System, choose, pareto_front
from xencoder_lab.exercises import nb09
from xencoder_lab.solutions import nb09 as solutions


def front_where(beats):
    """A frontier whose 'b beats a' test is ``beats(ms_b, q_b, ms_a, q_a)``, fastest first."""
    def frontier(points, ms_tolerance=0.0):
        kept = [name for name, (ms, q) in points.items()
                if not any(beats(m, r, ms, q) for other, (m, r) in points.items() if other != name)]
        return sorted(kept, key=lambda name: points[name][0])
    return frontier


front_keeps_everything = front_where(lambda m, r, ms, q: False)
front_strictly_faster = front_where(lambda m, r, ms, q: m < ms and r >= q)
front_strictly_better = front_where(lambda m, r, ms, q: m <= ms and r > q)
front_drops_equal_points = front_where(lambda m, r, ms, q: m <= ms and r >= q)


def front_in_given_order(points, ms_tolerance=0.0):
    return [name for name in points if name in pareto_front(points)]


def front_sorted_by_name(points, ms_tolerance=0.0):
    return sorted(pareto_front(points))


def front_best_first(points, ms_tolerance=0.0):
    return sorted(pareto_front(points), key=lambda name: -points[name][1])


def front_by_sweep(points, ms_tolerance=0.0):
    kept, best = [], float("-inf")
    for name, (_, q) in sorted(points.items(), key=lambda item: (item[1][0], -item[1][1])):
        if q > best:
            kept.append(name)
            best = q
    return kept


def front_without_tolerance(points, ms_tolerance=0.0):
    return pareto_front(points)


def predicted(query_ms, per_doc_ms, rerank_ms, corpus_size):
    return query_ms + per_doc_ms * corpus_size + rerank_ms


def best_where(ms_of, fits=lambda ms, budget: ms <= budget, key=lambda q, ms: (q, -ms)):
    """A pick whose prediction, fit test and ranking key are given; None when nothing fits."""
    def best_within_budget(systems, corpus_size, latency_ms):
        fitting = {name: (q, ms_of(*rest, corpus_size)) for name, (q, *rest) in systems.items()}
        fitting = {name: qm for name, qm in fitting.items() if fits(qm[1], latency_ms)}
        return max(fitting, key=lambda name: key(*fitting[name])) if fitting else None
    return best_within_budget


best_fastest = best_where(predicted, key=lambda q, ms: -ms)
best_without_rerank = best_where(lambda query, per_doc, rerank, n: query + per_doc * n)
best_without_the_scan = best_where(lambda query, per_doc, rerank, n: query + rerank)
best_strictly_under = best_where(predicted, fits=lambda ms, budget: ms < budget)
best_first_of_ties = best_where(predicted, key=lambda q, ms: q)


def best_raises_when_nothing_fits(systems, corpus_size, latency_ms):
    fitting = {name: q for name, (q, *rest) in systems.items() if predicted(*rest, corpus_size) <= latency_ms}
    return min((-q, predicted(*systems[name][1:], corpus_size), name) for name, q in fitting.items())[2]


def test_solutions_and_the_package_pass(capsys):
    assert nb09.check_frontier(solutions.frontier) is True
    assert nb09.check_frontier(pareto_front) is True
    assert nb09.check_best_within_budget(solutions.best_within_budget) is True
    assert nb09.check_best_within_budget(nb09._choose) is True


@pytest.mark.parametrize("wrong, words", [
    (front_keeps_everything, "keep a point unless another"),
    (front_best_first, "fastest first"),
    (front_in_given_order, "by latency"),
    (front_sorted_by_name, "by latency"),
    (front_strictly_faster, "'at least as fast' includes equal"),
    (front_strictly_better, "'at least as good' includes equal"),
    (front_drops_equal_points, "both stay"),
    (front_by_sweep, "both stay"),
    (front_without_tolerance, "12 ms is as fast as 10 ms"),
])
def test_frontier_mistakes_are_named(wrong, words, capsys):
    assert nb09.check_frontier(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (best_fastest, "the best quality among them"),
    (best_without_rerank, "add rerank_ms"),
    (best_without_the_scan, "per_doc_ms x corpus_size"),
    (best_strictly_under, "<=, not <"),
    (best_first_of_ties, "take the faster"),
    (best_raises_when_nothing_fits, "return None"),
])
def test_budget_mistakes_are_named(wrong, words, capsys):
    assert nb09.check_best_within_budget(wrong) is False
    assert words in capsys.readouterr().out


CANDIDATES = [
    System("BM25", {"unseen": 0.672}, query_ms=0.0, per_doc_ms=3e-3),
    System("bi-encoder", {"unseen": 0.679}, query_ms=29.0, per_doc_ms=1.7e-4),
    System("hybrid", {"unseen": 0.748}, query_ms=29.0, per_doc_ms=2.2e-3),  # 469 ms: fits only at speedup 2
    System("bi -> cross-encoder", {"unseen": 0.649}, query_ms=29.0, per_doc_ms=1.7e-4, rerank_ms=5000.0),
]


def test_faster_machine_read_off_takes_no_guess(capsys):
    expected = choose(CANDIDATES, 200_000, 250, "unseen", speedup=2).quality
    assert nb09.check_faster_machine(None, CANDIDATES) is None
    assert "not answered yet" in capsys.readouterr().out
    assert nb09.check_faster_machine(round(expected, 3), CANDIDATES) is True
    for wrong in ("hybrid", True, 72.0, 0.0):
        assert nb09.check_faster_machine(wrong, CANDIDATES) is False
    assert nb09.check_faster_machine(choose(CANDIDATES, 200_000, 250, "unseen").quality, CANDIDATES) is False
    for guess in (0.25, 0.5, 0.75):
        nb09.check_faster_machine(guess, CANDIDATES)
    assert capsys.readouterr().out.count(": correct") <= 1  # at most one of three spread guesses is within 0.001
