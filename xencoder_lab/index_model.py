"""A dense system's index as a measurement and a stated scaling model, for ``choose`` (notebooks 06 and 09).

``benchmarks/ann.py`` (and notebook 06's table) measure each index at one corpus size N_m: recall@10 of exact
search's top 10, milliseconds of one query's search, bytes per vector. ``choose`` needs them at the corpus size of a
use case, N, usually far larger, so each kind of index carries a model of how its search time grows:

    exact (Flat)   ms(N) = ms_m * N / N_m                 every vector is compared
    HNSW           ms(N) = ms_m * ln N / ln N_m            a greedy walk down ~log N layers at a fixed efSearch
    IVF (Flat, PQ) ms(N) = ms_m * sqrt(N / N_m)            nlist = 4 sqrt(N) lists, rebuilt for N (ann.py's rule),
                                                           at a fixed nprobe: nlist centroids plus nprobe N / nlist
                                                           codes, both grow as sqrt(N)

Bytes per vector do not change with N. Recall@10 is taken as measured at N_m: at a fixed efSearch or nprobe it falls
as N grows (notebook 06: HNSW32 at efSearch 64 found 0.996 at 5,183 vectors, 0.918 at 200,000), so a prediction far
past N_m is optimistic on recall and, for HNSW (cache misses grow with the graph), on time: measure as near the
target size as you can; ``scale`` says how far each prediction reaches.

What an index's misses cost in quality is modelled pessimistically: nDCG@10 with the index = exact nDCG@10 x
recall@10, as if each missed document of the exact top 10 were a relevant one, replaced by an irrelevant one.

>>> hnsw = Index("HNSW32 efSearch=256", "hnsw", recall=0.983, ms=0.593, measured_n=200_000, bytes_per_vector=1808)
>>> round(hnsw.search_ms(10_000_000), 2), round(hnsw.quality(0.70), 3), hnsw.scale(10_000_000)
(0.78, 0.688, 50.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

MODELS = {"exact": "N", "hnsw": "log N", "ivf": "sqrt N"}  # how a search's time grows, per kind


@dataclass(frozen=True)
class Index:
    """One measured index setting: ``kind`` ("exact", "hnsw" or "ivf"), its ``recall`` (recall@10 of exact search),
    ``ms`` (one query's search, encoding not included) and ``bytes_per_vector``, all at ``measured_n`` vectors."""

    name: str
    kind: str
    recall: float
    ms: float
    measured_n: int
    bytes_per_vector: float

    def __post_init__(self):
        if self.kind not in MODELS:
            raise ValueError(f"unknown index kind {self.kind!r}: one of {', '.join(MODELS)}.")
        if not 0 < self.recall <= 1 or self.ms < 0 or self.measured_n < 2:
            raise ValueError(f"{self.name}: recall in (0, 1], ms >= 0 and measured_n >= 2, please.")

    def search_ms(self, corpus_size: int) -> float:
        """Predicted ms of one query's search over ``corpus_size`` vectors (module docstring's models).

        >>> Index("Flat", "exact", 1.0, ms=10.0, measured_n=200_000, bytes_per_vector=1536).search_ms(1_000_000)
        50.0
        >>> Index("IVF,PQ48", "ivf", 0.57, ms=0.14, measured_n=200_000, bytes_per_vector=74).search_ms(800_000)
        0.28
        """
        ratio = max(corpus_size, 2) / self.measured_n
        growth = {"exact": ratio, "hnsw": math.log(max(corpus_size, 2)) / math.log(self.measured_n),
                  "ivf": math.sqrt(ratio)}[self.kind]
        return self.ms * growth

    def quality(self, exact_quality: float) -> float:
        """nDCG@10 with this index: the exact system's x recall@10 (a pessimistic model, module docstring)."""
        return exact_quality * self.recall

    def scale(self, corpus_size: int) -> float:
        """How far a prediction reaches: corpus_size / measured_n (1 at the measured size)."""
        return corpus_size / self.measured_n

    def describe(self, corpus_size: int | None = None) -> str:
        """Where the index was measured and how its time is scaled (to ``corpus_size``: how far), in words.

        >>> Index("HNSW32", "hnsw", 0.98, ms=0.6, measured_n=200_000, bytes_per_vector=1808).describe(10_000_000)
        'recall@10 0.980 and 1,808 bytes a vector measured at 200,000 vectors, time scaled as log N, 50x further'
        """
        far = self.scale(corpus_size) if corpus_size else 1.0
        return (f"recall@10 {self.recall:.3f} and {self.bytes_per_vector:,.0f} bytes a vector measured at "
                f"{self.measured_n:,} vectors, time scaled as {MODELS[self.kind]}"
                + (f", {far:,.0f}x further" if far >= 1.5 else ""))

    @classmethod
    def from_measurement(cls, label: str, row: Mapping, measured_n: int) -> "Index":
        """An index from one row of ``ann.measure_indexes`` (``label`` its key, e.g. ``"HNSW32 efSearch=64"``;
        ``row`` with ``"recall@10"``, ``"ms p50"``, ``"bytes/vector"``) measured at ``measured_n`` vectors; the kind
        is read from FAISS's factory string.

        Args:
            label: the row's key: the index_factory key, then its search setting if any.
            row: the row's figures.
            measured_n: the vectors the index held when measured.

        Returns:
            an ``Index``.

        >>> row = {"recall@10": 0.6, "ms p50": 0.2, "bytes/vector": 80.0}
        >>> Index.from_measurement("IVF4096,PQ48 nprobe=16", row, 1_000_000).kind
        'ivf'
        """
        key = label.split(" ", 1)[0]
        kind = "exact" if key.startswith("Flat") else "hnsw" if key.startswith("HNSW") else "ivf"
        if kind == "ivf" and not key.startswith("IVF"):
            raise ValueError(f"{key}: no scaling model for this index (Flat, HNSW or IVF).")
        return cls(label, kind, float(row["recall@10"]), float(row["ms p50"]), measured_n, float(row["bytes/vector"]))
