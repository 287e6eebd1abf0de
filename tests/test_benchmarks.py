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
    ratio = load("encode").main(["--docs", "8", "--rounds", "1", "--max-length", "64", "--threads", "1"])
    out = capsys.readouterr().out
    assert ratio > 0 and "ratio xencoder_lab / sentence-transformers" in out and "peak" in out
