"""Solutions to notebook 09's exercises."""

from __future__ import annotations


def frontier(points: dict[str, tuple[float, float]], ms_tolerance: float = 0.0) -> list[str]:
    """Exercise 1: the names no other point beats, fastest first. With t = ``ms_tolerance``, b beats a when

        ms_b <= (1 + t) ms_a  and  q_b >= q_a  and  (q_b > q_a  or  ms_b (1 + t) < ms_a)

    (t = 0: at least as fast and as good, strictly better on one).
    """
    factor = 1 + ms_tolerance
    kept = []
    for name, (ms, quality) in points.items():
        beaten = False
        for other, (other_ms, other_quality) in points.items():
            if other == name:
                continue
            as_fast = other_ms <= factor * ms
            as_good = other_quality >= quality
            strictly_better = other_quality > quality or other_ms * factor < ms
            if as_fast and as_good and strictly_better:
                beaten = True
                break
        if not beaten:
            kept.append(name)
    return sorted(kept, key=lambda name: points[name][0])


def best_within_budget(systems: dict[str, tuple[float, float, float, float]], corpus_size: int,
                       latency_ms: float) -> str | None:
    """Exercise 2: among the systems whose predicted ms(N) = query_ms + per_doc_ms x N + rerank_ms is within
    ``latency_ms``, the best quality (ties: the faster); None when none fits. ``systems``: {name: (quality,
    query_ms, per_doc_ms, rerank_ms)}."""
    best, best_key = None, None
    for name, (quality, query_ms, per_doc_ms, rerank_ms) in systems.items():
        ms = query_ms + per_doc_ms * corpus_size + rerank_ms
        if ms <= latency_ms and (best_key is None or (quality, -ms) > best_key):
            best, best_key = name, (quality, -ms)
    return best
