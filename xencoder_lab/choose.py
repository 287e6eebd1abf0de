"""Choosing an architecture from measured numbers, not fixed thresholds (notebook 09).

The syllabus's ``choose_architecture`` returns "bi-encoder" when the corpus holds over a million documents and the
budget is under 100 ms, whatever the models, the hardware or the data. Here each system is what the course
measured on this machine: its quality on the three columns and its cost per query, split into the part that does
not grow with the corpus (encoding the query, reranking k1 candidates) and the part that does (scanning the
corpus's vectors, tokens or postings):

    ms(N) = (query_ms + per_doc_ms * N + rerank_ms) / speedup          speedup: other hardware, measured there

``choose`` takes the best system on the column that matters among those whose predicted latency fits the budget;
``pareto_front`` names the systems no other beats on both quality and latency; ``deployment`` scales one system
to a corpus that needs more than one machine.

>>> bi = System("bi-encoder", {"unseen": 0.68}, query_ms=10, per_doc_ms=6e-5)
>>> ce = System("bi-encoder -> cross-encoder", {"unseen": 0.70}, query_ms=10, per_doc_ms=6e-5, rerank_ms=900)
>>> choose([bi, ce], corpus_size=1_000_000, latency_ms=1000).system.name
'bi-encoder -> cross-encoder'
>>> choose([bi, ce], corpus_size=1_000_000, latency_ms=100).system.name
'bi-encoder'
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from .timing import time_calls


@dataclass
class System:
    """One measured system: ``quality`` {column: nDCG@10}, and milliseconds per query split as in the module
    docstring; ``bytes_per_doc`` is what its index keeps per document (0 when unknown)."""

    name: str
    quality: Mapping[str, float]
    query_ms: float
    per_doc_ms: float = 0.0
    rerank_ms: float = 0.0
    bytes_per_doc: float = 0.0

    def ms(self, corpus_size: int, speedup: float = 1.0) -> float:
        """Predicted milliseconds per query over ``corpus_size`` documents.

        >>> System("x", {}, query_ms=10, per_doc_ms=1e-4, rerank_ms=40).ms(1_000_000)
        150.0
        """
        return (self.query_ms + self.per_doc_ms * corpus_size + self.rerank_ms) / speedup


@dataclass
class Choice:
    """``system`` (None when nothing fits), the reason in words, and every candidate's predicted ms and quality."""

    system: System | None
    reason: str
    table: list[dict] = field(default_factory=list)


def choose(systems: Sequence[System], corpus_size: int, latency_ms: float, column: str = "unseen",
           speedup: float = 1.0, min_quality: float | None = None) -> Choice:
    """The best system on ``column`` whose predicted latency over ``corpus_size`` documents is within
    ``latency_ms``; with ``min_quality``, also at least that good. Ties go to the faster system."""
    if corpus_size < 1 or latency_ms <= 0 or speedup <= 0:
        raise ValueError("corpus_size must be >= 1, latency_ms and speedup > 0.")
    missing = [s.name for s in systems if column not in s.quality]
    if missing:
        raise ValueError(f"no {column!r} quality for {', '.join(missing)}: measure it, or choose another column.")
    table = [{"system": s.name, "ms": round(s.ms(corpus_size, speedup), 1), column: round(s.quality[column], 3),
              "fits": s.ms(corpus_size, speedup) <= latency_ms} for s in systems]
    fitting = [s for s, row in zip(systems, table) if row["fits"]]
    if not fitting:
        fastest = min(systems, key=lambda s: s.ms(corpus_size, speedup))
        return Choice(None, f"nothing fits {latency_ms:g} ms at {corpus_size:,} documents: the fastest, "
                            f"{fastest.name}, needs {fastest.ms(corpus_size, speedup):,.0f} ms. Use an approximate "
                            "index, shard the corpus across machines, or faster hardware.", table)
    best = max(fitting, key=lambda s: (s.quality[column], -s.ms(corpus_size, speedup)))
    if min_quality is not None and best.quality[column] < min_quality:
        return Choice(None, f"within {latency_ms:g} ms the best on {column} is {best.name} at "
                            f"{best.quality[column]:.3f}, below the {min_quality:.3f} needed.", table)
    slower = [s for s in systems if s not in fitting and s.quality[column] > best.quality[column]]
    reason = (f"{best.name}: {best.quality[column]:.3f} on {column} in {best.ms(corpus_size, speedup):,.0f} ms at "
              f"{corpus_size:,} documents")
    if slower:
        better = max(slower, key=lambda s: s.quality[column])
        reason += (f"; {better.name} would give {better.quality[column]:.3f} but needs "
                   f"{better.ms(corpus_size, speedup):,.0f} ms")
    return Choice(best, reason, table)


def pareto_front(points: Mapping[str, tuple[float, float]], ms_tolerance: float = 0.0) -> list[str]:
    """The names of ``points`` {name: (ms, quality)} that no other point beats on both: none is at least as fast
    and at least as good, and strictly better on one. Sorted by ms.

    Timings repeat only so well: on a shared machine the same search can take half again as long in another run.
    With ``ms_tolerance=t``, latencies within a factor 1 + t of each other count as equal, so a point is not on the
    front merely for being a few milliseconds faster: b beats a when ms_b <= (1 + t) ms_a and q_b >= q_a, and
    q_b > q_a or ms_b < ms_a / (1 + t).

    >>> pareto_front({"a": (1, 0.60), "b": (5, 0.70), "c": (6, 0.65), "d": (50, 0.80)})
    ['a', 'b', 'd']
    >>> pareto_front({"a": (10, 0.60), "b": (12, 0.70), "d": (50, 0.80)}, ms_tolerance=0.5)  # b is as fast as a
    ['b', 'd']
    """
    factor = 1.0 + ms_tolerance

    def beaten(name):
        ms, quality = points[name]
        return any(m <= factor * ms and q >= quality and (q > quality or m * factor < ms)
                   for other, (m, q) in points.items() if other != name)

    return sorted((name for name in points if not beaten(name)), key=lambda name: points[name][0])


def deployment(system: System, corpus_size: int, encode_docs_per_s: float, machine_gb: float = 64.0,
               machine_cores: int = 16, measured_cores: int = 2, replicas: int = 2, memory_share: float = 0.7,
               encoding_machines: int = 10) -> dict:
    """What ``system``'s first stage needs for ``corpus_size`` documents on machines of ``machine_gb`` and
    ``machine_cores``, from its measured cost (``measured_cores``: the cores it was measured on):

    - shards: the index split so each machine holds ``memory_share`` of its memory at most (bytes_per_doc x N);
    - machines: shards x ``replicas`` (each shard kept twice: a machine can fail, queries spread over copies);
    - encoding hours on ``encoding_machines`` machines, at ``encode_docs_per_s`` per ``measured_cores`` cores;
    - query ms: the shards scan in parallel, so the per-document part divides by the shard count.

    >>> bi = System("bi", {}, query_ms=10, per_doc_ms=6e-5, bytes_per_doc=1536)
    >>> plan = deployment(bi, 100_000_000, encode_docs_per_s=30)
    >>> plan["shards"], plan["machines"], plan["index GB"], plan["query ms"]
    (4, 8, 153.6, 1510.0)
    """
    index_gb = system.bytes_per_doc * corpus_size / 1e9
    shards = max(1, math.ceil(index_gb / (machine_gb * memory_share)))
    rate = encode_docs_per_s * (machine_cores / measured_cores) * encoding_machines  # documents a second, all
    return {
        "documents": corpus_size,
        "index GB": round(index_gb, 1),
        "shards": shards,
        "machines": shards * replicas,
        "encoding hours": round(corpus_size / rate / 3600, 1),
        "query ms": round(system.query_ms + system.per_doc_ms * corpus_size / shards + system.rerank_ms, 1),
    }


def median_ms(fn: Callable[[object], object], inputs: Iterable, warmup: int = 1) -> float:
    """Median milliseconds of ``fn(x)`` over ``inputs``, each call alone, after ``warmup`` unmeasured calls
    (``timing.time_calls``): the latency a user meets, not a batch's throughput.

    >>> median_ms(lambda x: sum(range(x)), [10, 10, 10]) < 100
    True
    """
    return 1000 * statistics.median(seconds for _, seconds in time_calls(fn, inputs, warmup))
