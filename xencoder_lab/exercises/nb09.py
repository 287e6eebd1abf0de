"""Checks for notebook 09's exercises: the quality/latency frontier, against ``choose.pareto_front``; the best
system within a latency budget at a corpus size, against ``choose.choose``; and the read-off, the quality of what
``choose`` recommends on a faster machine."""

from __future__ import annotations

from xencoder_lab.choose import System, choose, pareto_front
from xencoder_lab.exercises import Case, check, check_answer, screen


def check_frontier(frontier) -> bool | None:
    """Exercise 1: ``frontier(points, ms_tolerance=0.0)``, the names no other point beats, fastest first."""
    cases = [
        Case("four systems with one beaten", ({"a": (1, 0.60), "b": (5, 0.70), "c": (6, 0.65), "d": (50, 0.80)},),
             hint="keep a point unless another is at least as fast and at least as good, and strictly better on "
                  "one of the two; list the names kept fastest first"),
        Case("systems listed out of order", ({"y": (50, 0.80), "z": (1, 0.60), "x": (5, 0.70)},),
             hint="list the names by latency (the first number), fastest first"),
        Case("a system as fast as another but worse", ({"a": (1, 0.60), "b": (5, 0.70), "c": (5, 0.65)},),
             hint="a point exactly as fast as another but worse is beaten: 'at least as fast' includes equal"),
        Case("a system as good as another but slower", ({"a": (1, 0.60), "b": (5, 0.70), "c": (8, 0.70)},),
             hint="a point exactly as good as another but slower is beaten: 'at least as good' includes equal"),
        Case("two systems equal on both", ({"a": (1, 0.60), "b": (5, 0.70), "b again": (5, 0.70)},),
             hint="two points equal on both numbers do not beat each other (neither is strictly better): both stay"),
        Case("a tolerance of 0.5 (the notebook's MS_TOLERANCE)",
             ({"a": (10, 0.60), "b": (12, 0.70), "c": (14, 0.65), "d": (50, 0.80)},), kwargs={"ms_tolerance": 0.5},
             hint="with ms_tolerance t, b beats a when ms_b <= (1 + t) ms_a and q_b >= q_a, and q_b > q_a or "
                  "ms_b (1 + t) < ms_a: 12 ms is as fast as 10 ms, so b beats a"),
    ]
    return check("Exercise 1 (Pareto frontier)", frontier, pareto_front, cases)


def _choose(systems, corpus_size, latency_ms):
    """``choose`` on systems given as {name: (quality, query_ms, per_doc_ms, rerank_ms)}: the name, or None."""
    measured = [System(name, {"q": q}, query_ms, per_doc_ms, rerank_ms)
                for name, (q, query_ms, per_doc_ms, rerank_ms) in systems.items()]
    choice = choose(measured, corpus_size, latency_ms, column="q")
    return None if choice.system is None else choice.system.name


def check_best_within_budget(best_within_budget) -> bool | None:
    """Exercise 2: ``best_within_budget(systems, corpus_size, latency_ms)``, the best system's name, or None."""
    systems = {  # name: (quality, query_ms, per_doc_ms, rerank_ms)
        "BM25": (0.66, 0.0, 0.004, 0.0),
        "bi-encoder": (0.68, 20.0, 0.0002, 0.0),
        "bi -> cross-encoder": (0.80, 20.0, 0.0002, 900.0),
    }
    ties = {"hybrid, slower copy": (0.75, 60.0, 0.001, 0.0), "bi-encoder": (0.68, 20.0, 0.0002, 0.0),
            "hybrid": (0.75, 30.0, 0.001, 0.0)}
    cases = [
        Case("5,000 documents in 1 s", (systems, 5_000, 1000),
             hint="predict each system's ms as query_ms + per_doc_ms x corpus_size + rerank_ms, keep those within "
                  "the budget, and return the name of the best quality among them"),
        Case("5,000 documents in 100 ms", (systems, 5_000, 100),
             hint="a reranker's time counts: add rerank_ms to the prediction"),
        Case("a million documents in 1 s", (systems, 1_000_000, 1000),
             hint="the scan grows with the corpus: add per_doc_ms x corpus_size"),
        Case("a system exactly at the budget", (systems, 5_000, 921),
             hint="a system whose predicted ms equals the budget fits it (<=, not <)"),
        Case("two systems equally good", (ties, 10_000, 200),
             hint="when two systems that fit are equally good, take the faster"),
        Case("a budget nothing fits", (systems, 10_000_000, 100),
             hint="when no system fits the budget, return None: no name is right"),
    ]
    return check("Exercise 2 (best within a budget)", best_within_budget, _choose, cases)


def check_faster_machine(answer: float | None, candidates) -> bool | None:
    """Exercise 3: the nDCG@10 on ``unseen`` of what ``choose`` recommends for 200,000 documents within 250 ms on a
    machine twice as fast (``speedup=2``); ``candidates`` are the notebook's measured systems."""
    title = "Exercise 3 (a faster machine)"
    verdict = screen(title, answer)
    if verdict is not True:
        return verdict
    choice = choose(candidates, 200_000, 250, "unseen", speedup=2)
    if choice.system is None:
        print(f"{title}: on this run's timings nothing fits ({choice.reason}); any answer stands.")
        return None
    return check_answer(title, answer, choice.quality, 1e-3,
                        "call choose(candidates, 200_000, 250, 'unseen', speedup=2) and read its quality "
                        "(three decimals)")
