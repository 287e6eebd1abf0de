"""The benchmark scripts run end to end (tiny sizes); their timings are not asserted here."""

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_encode_benchmark_runs(scifact_test, capsys):
    ratio = load("encode").main(["--docs", "8", "--rounds", "1", "--max-length", "64", "--threads", "1", "--onnx"])
    out = capsys.readouterr().out
    assert ratio > 0 and "ratio xencoder_lab / sentence-transformers" in out and "peak" in out
    assert "ratio onnx int8 / sentence-transformers" in out


def test_rerank_benchmark_runs(scifact_test, capsys):
    args = ["--queries", "2", "--docs", "4", "--rounds", "1", "--max-length", "64", "--threads", "1", "--onnx",
            "--model", "small-cross-encoder"]
    ratio = load("rerank").main(args)
    out = capsys.readouterr().out
    assert "ratio onnx int8 / sentence-transformers" in out
    assert ratio > 0 and "ratio xencoder_lab / sentence-transformers" in out and "peak" in out
    assert out.count("small-cross-encoder: 8 pairs") == 1
    diff = float(out.split("max abs difference between the two logits ")[1].split()[0])
    assert diff <= 1e-3  # main() asserts it too: the two score the same pairs with the same weights


def test_cache_benchmark_runs(scifact_test, capsys):
    args = ["--queries", "8", "--depth", "3", "--k", "2", "--sizes", "0", "3", "30", "--max-length", "64",
            "--threads", "1"]
    ratios = load("cache").main(args)
    out = capsys.readouterr().out
    assert set(ratios) == {0, 3, 30} and ratios[0] == 1.0
    assert "hit rate of a cache that keeps every pair" in out


def test_ann_benchmark_runs(scifact_test, capsys):
    args = ["--n", "6000", "--queries", "5", "--nlist", "16", "--ef", "16", "--nprobe", "2", "--pq", "8",
            "--threads", "1"]
    rows = load("ann").main(args)
    out = capsys.readouterr().out
    assert [r["index"] for r in rows] == ["Flat", "HNSW32", "IVF16,Flat", "IVF16,PQ8"]
    assert rows[0]["recall"] == 1.0 and rows[-1]["bytes"] < rows[0]["bytes"]
    assert "6,000 synthetic" in out


def test_fusion_benchmark_runs(capsys):
    rows = load("fusion").main(["--toy", "--weights", "0.5"])
    out = capsys.readouterr().out
    assert "noise + zero-shot, z-score, b=0.5" in out and set(rows["bm25"]) == {"toy"}
    assert rows["bm25 + noise, z-score, b=0.5"]["toy"] > rows["bm25 + noise, rrf, b=0.5"]["toy"]  # noise hurts RRF most
