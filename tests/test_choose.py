"""choose: the decision follows the measured numbers, says why, and says so when nothing fits."""

import numpy as np
import pytest

from xencoder_lab.choose import (
    USE_CASES,
    Index,
    System,
    choose,
    deployment,
    for_use_cases,
    hybrid_of,
    median_ms,
    pareto_front,
    show_costs,
    stage_ms,
)
from xencoder_lab.data import TOY_PATH, Dataset, load_beir
from xencoder_lab.pipeline import Pipeline

BM25 = System("BM25", {"all": 0.678, "unseen": 0.678}, query_ms=0.0, per_doc_ms=4e-3)
BI = System("bi", {"all": 0.708, "unseen": 0.679}, query_ms=15.0, per_doc_ms=6e-5, bytes_per_doc=1536)
CE = System("bi -> ce", {"all": 0.805, "unseen": 0.649}, query_ms=15.0, per_doc_ms=6e-5, rerank_ms=4300.0)


def test_the_column_that_matters_changes_the_answer():
    assert choose([BM25, BI, CE], 5_000, 10_000, column="all").system is CE
    assert choose([BM25, BI, CE], 5_000, 10_000, column="unseen").system is BI  # CE is below both there


def test_the_corpus_size_moves_bm25_out_of_the_budget():
    assert choose([BM25, BI], 5_000, 100, column="unseen").system is BI
    small = choose([BM25, System("bi", {"unseen": 0.60}, 15.0, 6e-5)], 5_000, 100, column="unseen")
    assert small.system is BM25
    large = choose([BM25, System("bi", {"unseen": 0.60}, 15.0, 6e-5)], 10_000_000, 1000, column="unseen")
    assert large.system.name == "bi" and "BM25 would give 0.678" in large.reason


def test_faster_hardware_and_nothing_that_fits():
    assert choose([BI, CE], 5_000, 1000, column="all").system is BI
    assert choose([BI, CE], 5_000, 1000, column="all", speedup=10).system is CE
    none = choose([BI, CE], 10**9, 10, column="all")
    assert none.system is None and "nothing fits" in none.reason and len(none.table) == 2
    short = choose([BI], 5_000, 1000, column="all", min_quality=0.8)
    assert short.system is None and "below the 0.800 needed" in short.reason


def test_bad_requests_are_clear_errors():
    with pytest.raises(ValueError, match="no 'CACM' quality for BM25"):
        choose([BM25], 5_000, 100, column="CACM")
    with pytest.raises(ValueError, match="corpus_size"):
        choose([BM25], 0, 100)


def test_pareto_front_keeps_ties_and_drops_the_dominated():
    points = {"a": (1, 0.6), "b": (1, 0.6), "c": (2, 0.6), "d": (3, 0.7)}
    assert pareto_front(points) == ["a", "b", "d"]
    timed = {"BM25": (11, 0.678), "bi": (14, 0.708), "ColBERT": (600, 0.714), "CE": (5000, 0.805)}
    assert pareto_front(timed) == ["BM25", "bi", "ColBERT", "CE"]
    assert pareto_front(timed, ms_tolerance=0.5) == ["bi", "ColBERT", "CE"]  # 11 vs 14 ms: one class
    assert pareto_front({**timed, "BM25": (5, 0.678)}, ms_tolerance=0.5)[0] == "BM25"  # clearly faster


def test_deployment_shards_by_memory_and_keeps_copies():
    small, large = deployment(BI, 10_000_000, 30), deployment(BI, 100_000_000, 30)
    assert small["shards"] == 1 and small["machines"] == 2
    assert large["shards"] == 4 and large["machines"] == 8  # 153.6 GB at 44.8 GB a machine
    assert large["encoding hours"] == pytest.approx(10 * small["encoding hours"], rel=0.05)  # rounded to 0.1 h
    assert deployment(BI, 100_000_000, 30, replicas=3)["machines"] == 12


def test_median_ms_warms_up_then_times_each_input_alone():
    calls = []
    assert median_ms(calls.append, [1, 2, 3], warmup=2) >= 0
    assert calls == [1, 2, 1, 2, 3]  # two unmeasured calls, then one per input
    with pytest.raises(ValueError, match="no inputs to time"):
        median_ms(calls.append, [])


class _Timed:
    """A system whose three queries take fixed seconds, recording the depth and k it is timed with."""

    def __init__(self, n_docs, calls):
        self.ds, self.calls = Dataset("made-up", "test", {f"d{i}": {"text": "x"} for i in range(n_docs)}, {}, {}), calls

    def stage_seconds(self, queries, depth, k):
        self.calls.append((depth, k))
        return {"first_stage": np.array([0.01, 0.03, 0.02]), "rerank": np.array([0.1, 0.0, 0.2])}


def test_stage_ms_takes_stage_medians_and_the_slowest_total():
    calls = []
    ms = stage_ms({"deep": _Timed(500, calls), "shallow": _Timed(500, calls), "tiny": _Timed(4, calls)},
                  ["a", "b", "c"], depth={"deep": 100, "shallow": 10, "tiny": 100})
    assert calls == [(100, 10), (10, 10), (4, 4)]  # each its own depth, at most its corpus, k at most the depth
    assert ms["deep"] == pytest.approx({"first_stage": 20.0, "rerank": 100.0, "slowest": 220.0})  # not 30 + 200
    toy = Pipeline(load_beir("toy", path=TOY_PATH), "bm25")
    timed = stage_ms({"BM25": toy}, ["aspirin", "vaccines"])["BM25"]
    assert sorted(timed) == ["first_stage", "rerank", "slowest"] and timed["slowest"] >= timed["first_stage"] > 0


def test_show_costs_prints_the_columns_in_order_then_the_costs(capsys):
    ms = {"a": {"first_stage": 18.4, "rerank": 0.2, "slowest": 30.6}, "b": {"first_stage": 19, "rerank": 931.5,
                                                                                "slowest": 1200}}
    show_costs({"b": {"all": 0.8051, "CACM": 0.13}, "a": {"all": 0.7, "CACM": 0.45}}, ms, {"a": 0, "b": 1536},
               ["CACM", "all"])
    header, b, a = capsys.readouterr().out.splitlines()
    assert header == f"{'system':48}     CACM      all   1st ms  rerank ms  slowest  bytes/doc"
    assert b == f"{'b':48}    0.130    0.805       19        932     1200      1,536"
    assert a == f"{'a':48}    0.450    0.700       18          0       31          0"


# Illustrative inputs for the index and use-case tests: numbers of the orders notebooks 06 and 09 printed (their
# shapes: a bi-encoder's exact scan of ~0.17 ms per 1,000 documents, HNSW / IVF rows at 200,000 vectors), written
# here by hand so the tests need no run; they are not claimed as measurements.
HNSW = Index("HNSW32 efSearch=256", "hnsw", recall=0.983, ms=0.6, measured_n=200_000, bytes_per_vector=1808)
IVF = Index("IVF2048,Flat nprobe=16", "ivf", recall=0.964, ms=0.2, measured_n=200_000, bytes_per_vector=1560)
IVFPQ = Index("IVF2048,PQ48 nprobe=16", "ivf", recall=0.567, ms=0.14, measured_n=200_000, bytes_per_vector=74)
COLUMNS = ("all", "unseen", "CACM")
SPARSE = System("BM25", dict(zip(COLUMNS, (0.678, 0.678, 0.452))), query_ms=0.0, per_doc_ms=3e-3)
DENSE = System("bi", dict(zip(COLUMNS, (0.708, 0.679, 0.430))), 29.0, 1.7e-4, 0.0, 1536).with_indexes(HNSW, IVF, IVFPQ)
RERANKED = System("bi -> ce int8", dict(zip(COLUMNS, (0.776, 0.683, 0.374))), 29.0, 1.7e-4, 330.0, 1536,
                  (HNSW, IVF, IVFPQ))
POLY = System("poly", dict(zip(COLUMNS, (0.690, 0.699, 0.444))), 34.0, 2.8e-4, 0.0, 1536)
HYBRID = hybrid_of("hybrid", dict(zip(COLUMNS, (0.744, 0.748, 0.553))), SPARSE, DENSE)
MEASURED_LIKE = [SPARSE, DENSE, RERANKED, POLY, HYBRID]


def test_every_use_case_gets_a_system_an_index_and_shards():
    assert {"semantic search engine", "similar item recommendation", "large-scale document retrieval",
            "real-time question answering", "web search (first stage)", "e-commerce product search"} <= set(USE_CASES)
    answers = for_use_cases(MEASURED_LIKE)
    assert set(answers) == set(USE_CASES)
    for case, choice in answers.items():
        assert choice.system is not None, f"{case}: {choice.reason}"
        assert choice.ms <= USE_CASES[case][1] and choice.shards >= 1
    web = answers["web search (first stage)"]
    assert web.shards > 1 and f"{web.shards} shards" in web.reason  # 1.8 TB of HNSW graph: more than one machine
    assert answers["fact verification (SciFact itself)"].index is None  # exact search where it fits: as before


def test_ten_million_documents_in_100_ms_take_an_approximate_index():
    n, budget, column = USE_CASES["semantic search engine"]
    assert (n, budget) == (10_000_000, 100)
    assert choose([SPARSE, DENSE.with_indexes(), POLY], n, budget, column).system is None  # exact only: the old answer
    choice = choose(MEASURED_LIKE, n, budget, column)
    assert choice.index is not None and choice.index.kind != "exact" and choice.shards == 1
    assert choice.index.name in choice.reason and "x recall" in choice.reason and "log N" in choice.reason
    assert choice.quality == pytest.approx(choice.system.quality[column] * choice.index.recall)
    assert "hybrid would give 0.748" in choice.reason  # the better system that does not fit, with its ms


def test_a_budget_nothing_meets_names_the_smallest_latency_reachable():
    choice = choose(MEASURED_LIKE, 10_000_000, 5, "unseen")
    fastest = min(row["ms"] for row in choice.table)
    assert choice.system is None and "nothing fits 5 ms" in choice.reason
    assert f"the fastest, bi + {HNSW.name}, needs {fastest:,.0f} ms" in choice.reason
    assert fastest > 29  # encoding the query alone takes 29 ms: no index helps
    assert len(choice.table) == 2 + 2 * 4 + 1  # BM25, poly, hybrid exact; bi and bi -> ce with exact and 3 indexes


def test_an_index_larger_than_a_machine_is_sharded_and_pays_a_gather():
    hnsw_only = DENSE.with_indexes(HNSW)
    choice = choose([hnsw_only], 100_000_000, 200, "unseen", gather_ms=5.0)
    assert choice.index is HNSW and choice.shards == 5  # 180.8 GB at 44.8 GB a machine
    assert "180.8 GB" in choice.reason and "5 shards" in choice.reason
    assert choice.ms == pytest.approx(29.0 + HNSW.search_ms(20_000_000) + 5.0)  # the slowest shard, then merge
    assert choose([hnsw_only], 100_000_000, 200, "unseen", machine_gb=512).shards == 1
    exact = choose([DENSE.with_indexes()], 100_000_000, 10_000, "unseen")  # the exact scan splits too
    assert exact.shards == 4 and exact.ms == pytest.approx(29.0 + 1.7e-4 * 25_000_000 + 2.0)


def test_index_models_scale_as_stated():
    flat = Index("Flat", "exact", 1.0, ms=10.0, measured_n=200_000, bytes_per_vector=1536)
    assert flat.search_ms(2_000_000) == pytest.approx(100.0)  # linear
    assert HNSW.search_ms(200_000 ** 2) == pytest.approx(2 * HNSW.ms)  # log N: the square of N, twice the time
    assert IVF.search_ms(800_000) == pytest.approx(2 * IVF.ms)  # sqrt N: four times N, twice the time
    assert HNSW.quality(0.7) == pytest.approx(0.7 * 0.983)
    row = {"build s": 100.0, "bytes/vector": 1808.0, "recall@10": 0.92, "ms p50": 0.3, "ms p95": 0.5,
           "speed-up": 50.0}  # one row of ann.measure_indexes
    assert Index.from_measurement("HNSW32 efSearch=64", row, 1_000_000) == Index(
        "HNSW32 efSearch=64", "hnsw", 0.92, 0.3, 1_000_000, 1808.0)
    with pytest.raises(ValueError, match="no scaling model"):
        Index.from_measurement("PQ48", row, 1_000_000)
    with pytest.raises(ValueError, match="unknown index kind"):
        Index("LSH", "lsh", 0.9, 1.0, 1000, 64)


def test_a_hybrid_costs_both_of_its_parts():
    assert HYBRID.per_doc_ms == pytest.approx(SPARSE.per_doc_ms + DENSE.per_doc_ms)
    assert HYBRID.per_doc_ms > SPARSE.per_doc_ms  # notebook 09's own timing had put it below BM25's
    assert HYBRID.query_ms == SPARSE.query_ms + DENSE.query_ms and HYBRID.indexes == ()
    for n in (20, 5_000, 1_000_000):
        assert HYBRID.ms(n) >= max(SPARSE.ms(n), DENSE.ms(n))
    tight = choose([SPARSE, HYBRID], 1_000_000, SPARSE.ms(1_000_000) + 1, "unseen")
    assert tight.system is SPARSE and "hybrid would give 0.748" in tight.reason  # never faster than its own scan
