"""choose: the decision follows the measured numbers, says why, and says so when nothing fits."""

import pytest

from xencoder_lab.choose import System, choose, deployment, median_ms, pareto_front

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
