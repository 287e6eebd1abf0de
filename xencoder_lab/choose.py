"""Choosing an architecture from measured numbers, not fixed thresholds (notebook 09).

The syllabus's ``choose_architecture`` returns "bi-encoder" when the corpus holds over a million documents and the
budget is under 100 ms, whatever the models, the hardware or the data. Here each system is what the course
measured on this machine: its quality on the three columns and its cost per query, split into the part that does
not grow with the corpus (encoding the query, reranking the top candidates) and the part that does (scanning the
corpus's vectors, tokens or postings):

    ms(N) = (query_ms + per_doc_ms * N + rerank_ms) / speedup          speedup: other hardware, measured there

A dense system can also search through a measured approximate index (``System.indexes``, ``index_model.Index``:
HNSW, IVF-Flat, IVF-PQ), which replaces the exact scan ``per_doc_ms * N`` by the index's search time scaled from
its measured size to N, and its quality by quality x recall@10 (``index_model``'s models, stated there). An index
(bytes per vector x N) larger than ``memory_share`` of one machine's ``machine_gb`` is split into S shards; a query
then goes to every shard at once and waits for the slowest, then merges their top k (scatter-gather):

    ms(N) = (query_ms + search(N / S) + rerank_ms) / speedup + gather_ms      S = ceil(GB / (machine_gb x share))

``choose`` takes the best (system, index) on the column that matters among those whose predicted latency fits the
budget; ``pareto_front`` names the systems no other beats on both quality and latency; ``deployment`` scales one
system to a corpus that needs more than one machine; ``USE_CASES`` are the syllabus's use cases as numbers.
``stage_ms`` measures what a system costs per query, stage by stage, and ``show_costs`` prints it beside quality.

>>> bi = System("bi-encoder", {"unseen": 0.68}, query_ms=10, per_doc_ms=6e-5)
>>> ce = System("bi-encoder -> cross-encoder", {"unseen": 0.70}, query_ms=10, per_doc_ms=6e-5, rerank_ms=900)
>>> choose([bi, ce], corpus_size=1_000_000, latency_ms=1000).system.name
'bi-encoder -> cross-encoder'
>>> choose([bi, ce], corpus_size=1_000_000, latency_ms=100).system.name
'bi-encoder'
>>> choose([bi], corpus_size=100_000_000, latency_ms=100).system is None    # the exact scan takes 6 s
True
>>> hnsw = Index("HNSW32", "hnsw", recall=0.98, ms=0.6, measured_n=200_000, bytes_per_vector=1808)
>>> choice = choose([bi.with_indexes(hnsw)], corpus_size=100_000_000, latency_ms=100)
>>> choice.index.name, choice.shards, round(choice.quality, 3)
('HNSW32', 5, 0.666)
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .index_model import Index
from .protocol import depth_for
from .timing import time_calls

__all__ = ["Index", "System", "Choice", "USE_CASES", "choose", "for_use_cases", "hybrid_of", "pareto_front",
           "deployment", "median_ms", "stage_ms", "show_costs"]


@dataclass
class System:
    """One measured system: ``quality`` {column: nDCG@10}, and milliseconds per query split as in the module
    docstring; ``bytes_per_doc`` is what its index keeps per document (0 when unknown). ``indexes``: approximate
    indexes measured on its vectors, each an option beside its exact scan; give them only to a system whose
    per-document cost is one dense vector scan (a bi-encoder, alone or before a reranker), as an index replaces
    the whole of ``per_doc_ms``.

    Args:
        name: the system's name in tables.
        quality: ``{column: nDCG@10}``, e.g. ``{"unseen": 0.68}``.
        query_ms: ms per query that do not grow with the corpus (encoding the query).
        per_doc_ms: ms per query per document in the corpus (the exact scan).
        rerank_ms: ms per query for reranking its candidates.
        bytes_per_doc: index bytes per document; 0 when unknown.
        indexes: approximate indexes (``index_model.Index``) measured on its vectors.
    """

    name: str
    quality: Mapping[str, float]
    query_ms: float
    per_doc_ms: float = 0.0
    rerank_ms: float = 0.0
    bytes_per_doc: float = 0.0
    indexes: tuple[Index, ...] = ()

    def ms(self, corpus_size: int, speedup: float = 1.0) -> float:
        """Predicted milliseconds per query over ``corpus_size`` documents, exact search on one machine.

        Args:
            corpus_size: N, the documents searched.
            speedup: how much faster the target hardware is than the one measured.

        Returns:
            ms per query.

        >>> System("x", {}, query_ms=10, per_doc_ms=1e-4, rerank_ms=40).ms(1_000_000)
        150.0
        """
        return (self.query_ms + self.per_doc_ms * corpus_size + self.rerank_ms) / speedup

    def with_indexes(self, *indexes: Index) -> "System":
        """The same system with these approximate indexes as options (``System.indexes``).

        Args:
            *indexes: ``index_model.Index`` measurements; they replace any it had.

        Returns:
            a new ``System``.
        """
        return dataclasses.replace(self, indexes=tuple(indexes))


def hybrid_of(name: str, quality: Mapping[str, float], sparse: System, dense: System, rerank_ms: float = 0.0) -> System:
    """A hybrid first stage (notebook 05: BM25 and a bi-encoder, fused) from its two parts' measurements. It runs
    both for every query, so each cost is the sum of the parts' (fusing two top-k lists taken as free):

        query_ms = sparse.query_ms + dense.query_ms      per_doc_ms = sparse.per_doc_ms + dense.per_doc_ms

    so its predicted time is never below either part's, however the hybrid's own few timings fell; ``rerank_ms``
    is what a reranker after it adds. No approximate index: BM25's scan stays linear whatever the dense part uses.

    >>> bm25 = System("BM25", {}, query_ms=0, per_doc_ms=3e-3)
    >>> bi = System("bi", {}, query_ms=29, per_doc_ms=1.7e-4, bytes_per_doc=1536)
    >>> hybrid = hybrid_of("hybrid", {"unseen": 0.748}, bm25, bi)
    >>> hybrid.per_doc_ms > bm25.per_doc_ms, round(hybrid.ms(1_000_000)), hybrid.bytes_per_doc
    (True, 3199, 1536.0)
    """
    return System(name, quality, sparse.query_ms + dense.query_ms, sparse.per_doc_ms + dense.per_doc_ms, rerank_ms,
                  sparse.bytes_per_doc + dense.bytes_per_doc)


def shards_for(index_gb: float, machine_gb: float = 64.0, memory_share: float = 0.7) -> int:
    """Machines' worth of memory an index of ``index_gb`` needs, each machine giving it ``memory_share``.

    >>> shards_for(15.4), shards_for(153.6)
    (1, 4)
    """
    return max(1, math.ceil(index_gb / (machine_gb * memory_share)))


@dataclass(frozen=True)
class Plan:
    """One way to run a system over N documents: ``index`` (None: its exact scan) on ``shards`` machines'
    memory, its predicted ``ms`` and ``quality`` on one column, ``gb`` of index, and ``note``, the how in words."""

    system: System
    index: Index | None
    shards: int
    ms: float
    quality: float
    gb: float
    note: str

    @property
    def label(self) -> str:
        return self.system.name if self.index is None else f"{self.system.name} + {self.index.name}"


def plan(system: System, index: Index | None, corpus_size: int, column: str, speedup: float = 1.0,
         machine_gb: float = 64.0, memory_share: float = 0.7, gather_ms: float = 2.0) -> Plan:
    """``system`` with ``index`` over ``corpus_size`` documents, sharded when its index needs more than one
    machine's memory (module docstring's model)."""
    gb = (system.bytes_per_doc if index is None else index.bytes_per_vector) * corpus_size / 1e9
    shards = shards_for(gb, machine_gb, memory_share)
    per_shard = math.ceil(corpus_size / shards)
    search = system.per_doc_ms * per_shard if index is None else index.search_ms(per_shard)
    ms = (system.query_ms + search + system.rerank_ms) / speedup + (gather_ms if shards > 1 else 0.0)
    exact = system.quality[column]
    note = ""
    if index is not None:
        note = f" (exact {exact:.3f} x recall; {index.describe(per_shard)})"
    if shards > 1:
        note += (f"; {gb:,.1f} GB of index: {shards} shards of at most {machine_gb * memory_share:g} GB, "
                 f"{per_shard:,} documents each, the slowest shard's search plus {gather_ms:g} ms to gather and merge")
    elif index is not None:
        note += f"; {gb:,.1f} GB of index on one machine"
    quality = exact if index is None else index.quality(exact)
    return Plan(system, index, shards, ms, quality, gb, note)


@dataclass
class Choice:
    """``system`` (None when nothing fits), the reason in words, and every candidate's predicted ms and quality
    (``table``: one row per system and index); ``index`` (None: exact search), ``shards`` and the predicted
    ``ms`` and ``quality`` of the choice."""

    system: System | None
    reason: str
    table: list[dict] = field(default_factory=list)
    index: Index | None = None
    shards: int = 1
    ms: float | None = None
    quality: float | None = None


def choose(systems: Sequence[System], corpus_size: int, latency_ms: float, column: str = "unseen",
           speedup: float = 1.0, min_quality: float | None = None, machine_gb: float = 64.0,
           memory_share: float = 0.7, gather_ms: float = 2.0) -> Choice:
    """The best (system, index) on ``column`` whose predicted latency over ``corpus_size`` documents is within
    ``latency_ms``; with ``min_quality``, also at least that good. Each system is tried with its exact scan and
    each of its ``indexes``, sharded when the index outgrows ``memory_share`` of ``machine_gb`` (``gather_ms``:
    a scatter-gather's network round trip and merge, assumed, not measured here). Ties go to fewer shards, then
    to the faster.

    Args:
        systems: the measured candidates.
        corpus_size: N, the documents to search.
        latency_ms: the budget per query.
        column: the quality column that matters (``"unseen"``, ``"CACM"``, ``"all"``, ...).
        speedup: how much faster the target hardware is than the one measured.
        min_quality: the least quality acceptable on ``column``; None: any.
        machine_gb: one machine's memory.
        memory_share: the share of it an index may take.
        gather_ms: added per query when sharded.

    Returns:
        a ``Choice``: the system (None when nothing fits), the reason, every candidate's row, index, shards, ms
        and quality.

    Raises:
        ValueError: a non-positive size, budget or speedup, or a system without a ``column`` quality.
    """
    if corpus_size < 1 or latency_ms <= 0 or speedup <= 0:
        raise ValueError("corpus_size must be >= 1, latency_ms and speedup > 0.")
    missing = [s.name for s in systems if column not in s.quality]
    if missing:
        raise ValueError(f"no {column!r} quality for {', '.join(missing)}: measure it, or choose another column.")
    plans = [plan(s, index, corpus_size, column, speedup, machine_gb, memory_share, gather_ms)
             for s in systems for index in (None, *s.indexes)]
    table = [{"system": p.system.name, "index": p.index.name if p.index else "exact", "shards": p.shards,
              "ms": round(p.ms, 1), column: round(p.quality, 3), "fits": p.ms <= latency_ms} for p in plans]
    fitting = [p for p in plans if p.ms <= latency_ms]
    if not fitting:
        fastest = min(plans, key=lambda p: p.ms)
        advice = ("Shard the scan over more machines than memory needs, rerank fewer candidates, or faster hardware."
                  if any(s.indexes for s in systems) else "Use an approximate index (measure one with "
                  "benchmarks/ann.py: System.indexes), shard the corpus across machines, or faster hardware.")
        return Choice(None, f"nothing fits {latency_ms:g} ms at {corpus_size:,} documents: the fastest, "
                            f"{fastest.label}, needs {fastest.ms:,.0f} ms{fastest.note}. {advice}", table)
    best = max(fitting, key=lambda p: (p.quality, -p.shards, -p.ms))
    if min_quality is not None and best.quality < min_quality:
        return Choice(None, f"within {latency_ms:g} ms the best on {column} is {best.label} at "
                            f"{best.quality:.3f}, below the {min_quality:.3f} needed.", table)
    reason = f"{best.label}: {best.quality:.3f} on {column} in {best.ms:,.0f} ms at {corpus_size:,} documents"
    reason += best.note
    slower = [p for p in plans if p not in fitting and p.quality > best.quality]
    if slower:
        better = max(slower, key=lambda p: p.quality)
        reason += f"; {better.label} would give {better.quality:.3f} but needs {better.ms:,.0f} ms"
    return Choice(best.system, reason, table, index=best.index, shards=best.shards, ms=best.ms, quality=best.quality)


# The syllabus's use cases as numbers: (documents, budget ms, the column that resembles its data). The sizes and
# budgets are typical orders of magnitude, not measurements; "unseen" stands for a collection whose questions are
# unlike the training ones, "CACM" for another field, "all" for SciFact itself.
USE_CASES: dict[str, tuple[int, float, str]] = {
    "semantic search engine": (10_000_000, 100, "unseen"),
    "similar item recommendation": (1_000_000, 50, "CACM"),
    "large-scale document retrieval": (100_000_000, 200, "unseen"),
    "real-time question answering": (1_000_000, 100, "unseen"),
    "web search (first stage)": (1_000_000_000, 200, "unseen"),
    "e-commerce product search": (10_000_000, 100, "CACM"),
    "fact verification (SciFact itself)": (5_000, 2000, "all"),
    "answer selection (20 candidates each)": (20, 500, "unseen"),
    "small corpus QA": (1_000, 1000, "unseen"),
    "enterprise search": (1_000_000, 1000, "CACM"),
    "academic paper search": (1_000_000, 2000, "unseen"),
}


def for_use_cases(systems: Sequence[System], use_cases: Mapping[str, tuple[int, float, str]] = USE_CASES,
                  **options) -> dict[str, Choice]:
    """``choose`` for each use case {name: (documents, budget ms, column)}; ``options`` go to every call."""
    return {case: choose(systems, n, budget, column, **options) for case, (n, budget, column) in use_cases.items()}


def pareto_front(points: Mapping[str, tuple[float, float]], ms_tolerance: float = 0.0) -> list[str]:
    """The names of ``points`` {name: (ms, quality)} that no other point beats on both: none is at least as fast
    and at least as good, and strictly better on one. Sorted by ms.

    Timings repeat only so well: on a shared machine the same search can take half again as long in another run.
    With ``ms_tolerance=t``, latencies within a factor 1 + t of each other count as equal, so a point is not on the
    front merely for being a few milliseconds faster: b beats a when ms_b <= (1 + t) ms_a and q_b >= q_a, and
    q_b > q_a or ms_b < ms_a / (1 + t).

    Args:
        points: ``{name: (ms, quality)}``.
        ms_tolerance: t, the relative latency difference counted as none.

    Returns:
        the names on the front, fastest first.

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

    Args:
        system: the measured system (its ``bytes_per_doc`` sizes the index).
        corpus_size: N, the documents.
        encode_docs_per_s: documents encoded per second, measured on ``measured_cores`` cores.
        machine_gb: one machine's memory.
        machine_cores: one machine's cores.
        measured_cores: the cores the measurements ran on.
        replicas: copies of each shard.
        memory_share: the share of a machine's memory the index may take.
        encoding_machines: machines encoding the corpus.

    Returns:
        ``{"documents", "index GB", "shards", "machines", "encoding hours", "query ms"}``.

    >>> bi = System("bi", {}, query_ms=10, per_doc_ms=6e-5, bytes_per_doc=1536)
    >>> plan = deployment(bi, 100_000_000, encode_docs_per_s=30)
    >>> plan["shards"], plan["machines"], plan["index GB"], plan["query ms"]
    (4, 8, 153.6, 1510.0)
    """
    index_gb = system.bytes_per_doc * corpus_size / 1e9
    shards = shards_for(index_gb, machine_gb, memory_share)
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

    Args:
        fn: called once per input.
        inputs: e.g. query texts.
        warmup: calls made first and not measured.

    Returns:
        the median ms of one call.

    >>> median_ms(lambda x: sum(range(x)), [10, 10, 10]) < 100
    True
    """
    return 1000 * statistics.median(seconds for _, seconds in time_calls(fn, inputs, warmup))


def stage_ms(systems: Mapping[str, object], queries: Sequence[str], depth: int | Mapping[str, int] = 100,
             k: int = 10) -> dict[str, dict[str, float]]:
    """Each system's milliseconds per query, each query searched alone after a warm-up
    (``Pipeline.stage_seconds``): the median of each stage, and ``"slowest"``, the largest total of one query.

    Args:
        systems: ``{name: Pipeline}`` (anything with ``ds`` and ``stage_seconds``).
        queries: Q query texts.
        depth: the rerank depth, one for every system or ``{name: depth}`` (``protocol.depth_for``); at most
            a system's corpus.
        k: documents each search returns (at most the depth).

    Returns:
        ``{name: {"first_stage": ms, "rerank": ms, "slowest": ms}}``.

    >>> from xencoder_lab.data import TOY_PATH, load_beir
    >>> from xencoder_lab.pipeline import Pipeline
    >>> ms = stage_ms({"BM25": Pipeline(load_beir("toy", path=TOY_PATH), "bm25")}, ["aspirin", "vaccines"])
    >>> sorted(ms["BM25"]), ms["BM25"]["slowest"] >= ms["BM25"]["first_stage"]
    (['first_stage', 'rerank', 'slowest'], True)
    """
    table = {}
    for name, system in systems.items():
        reads = min(depth_for(depth, name), len(system.ds.corpus))
        seconds = system.stage_seconds(queries, depth=reads, k=min(k, reads))  # {stage: (Q,)}
        table[name] = {stage: 1000 * float(np.median(s)) for stage, s in seconds.items()}
        table[name]["slowest"] = 1000 * float(max(sum(seconds.values())))  # per-query totals
    return table


def show_costs(quality: Mapping[str, Mapping[str, float]], ms: Mapping[str, Mapping[str, float]],
               bytes_per_doc: Mapping[str, float], columns: Iterable[str]) -> None:
    """Print each system's quality on every column beside its costs: the median ms of each stage, the slowest
    query's total ms (``stage_ms``) and the bytes its first stage keeps per document.

    Args:
        quality: ``{system: {column: value}}``, in the order to print.
        ms: ``{system: {"first_stage": ms, "rerank": ms, "slowest": ms}}`` (``stage_ms``).
        bytes_per_doc: ``{system: bytes}``.
        columns: the column names, in the order to print.

    >>> show_costs({"BM25": {"all": 0.5}}, {"BM25": {"first_stage": 25, "rerank": 0, "slowest": 31}},
    ...            {"BM25": 0}, ["all"])
    system                                                all   1st ms  rerank ms  slowest  bytes/doc
    BM25                                                0.500       25          0       31          0
    """
    columns = list(columns)
    print(f"{'system':48}" + "".join(f"{c:>9}" for c in columns)
          + f"{'1st ms':>9}{'rerank ms':>11}{'slowest':>9}{'bytes/doc':>11}")
    for name in quality:
        print(f"{name:48}" + "".join(f"{quality[name][c]:9.3f}" for c in columns)
              + f"{ms[name]['first_stage']:9.0f}{ms[name]['rerank']:11.0f}{ms[name]['slowest']:9.0f}"
              + f"{bytes_per_doc[name]:11,.0f}")
