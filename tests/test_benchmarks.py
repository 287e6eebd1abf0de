"""The benchmark scripts run end to end (tiny sizes); their timings are not asserted here. The checkpoint the
cross-encoder's lever study keeps still gives what it recorded."""

import importlib.util
from pathlib import Path

import pytest

from xencoder_lab import checkpoints, pair_scores
from xencoder_lab.course_models import load_cross_encoder
from xencoder_lab.data import DatasetNotFoundError
from xencoder_lab.settings import CROSS_ENCODER_EVERY_LENGTH

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
    args = ["--queries", "2", "--docs", "4", "--rounds", "1", "--max-length", "64", "--threads", "1", "--onnx"]
    ratio = load("rerank").main(args)
    out = capsys.readouterr().out
    assert "ratio onnx int8 / sentence-transformers" in out
    assert ratio > 0 and "ratio xencoder_lab / sentence-transformers" in out and "peak" in out
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


SECOND_STAGE = BENCHMARKS / "cross_encoder_levers" / "every-length"


def test_the_kept_second_stage_still_gives_its_outputs(scifact_test):
    """The cross-encoder's second stage, kept beside its lever study until it replaces the course checkpoint: the
    recipe's current settings run on the committed first stage, and its weights and pair scores still give what its
    manifest and file recorded."""
    manifest = checkpoints.read_manifest(SECOND_STAGE)
    assert manifest["settings"] == CROSS_ENCODER_EVERY_LENGTH.asdict()
    assert manifest["init"] == checkpoints.weights_digest(checkpoints.CHECKPOINTS / "cross-encoder")
    model = load_cross_encoder(SECOND_STAGE, device="cpu")
    assert checkpoints.close_enough(manifest["probe"], checkpoints.probe_outputs(model))
    try:
        datasets = pair_scores.course_datasets()
    except DatasetNotFoundError as err:
        pytest.skip(f"CACM or SciFact train not available offline: {err}")
    result = pair_scores.check(model, n=16, seed=2, path=SECOND_STAGE / "pairs.npz", datasets=datasets)
    assert result["largest difference"] < 1e-3, result
