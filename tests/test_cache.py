import os
import subprocess
import sys

import numpy as np
import pytest

from xencoder_lab.cache import atomic_write, cache_dir, cache_key, load_or_compute


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XLAB_CACHE", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here" and (tmp_path / "here").is_dir()
    assert cache_dir(tmp_path / "there") == tmp_path / "there"


def test_arrays_and_json_round_trip(tmp_path):
    calls = []

    def array():
        calls.append("a")
        return np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)

    first = load_or_compute("emb", {"model": "m", "n": 4}, array, root=tmp_path)
    second = load_or_compute("emb", {"n": 4, "model": "m"}, array, root=tmp_path)
    assert first.dtype == np.float32 and np.array_equal(first, second) and calls == ["a"]
    third = load_or_compute("emb", {"model": "other", "n": 4}, array, root=tmp_path)
    assert calls == ["a", "a"] and np.array_equal(first, third)

    value = load_or_compute("scores", {"q": "x"}, lambda: {"d1": 0.5}, root=tmp_path)
    assert value == {"d1": 0.5}
    assert load_or_compute("scores", {"q": "x"}, lambda: pytest.fail("recomputed"), root=tmp_path) == value


def test_key_is_stable_across_processes():
    """sha256 of canonical JSON; hash(), which the syllabus uses, is salted per process for strings."""
    code = "from xencoder_lab.cache import cache_key; print(cache_key({'q': 'aspirin', 'd': 'heart'}), hash('aspirin'))"
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, text=True, check=True,
        ).stdout.split()
        for seed in ("1", "2")
    ]
    assert outputs[0][0] == outputs[1][0] == cache_key({"d": "heart", "q": "aspirin"})
    assert outputs[0][1] != outputs[1][1]


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "entry.npy"
    atomic_write(target, lambda tmp: tmp.write_text("good"))

    def crash(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_text() == "good"
    assert os.listdir(tmp_path) == ["entry.npy"]  # no temporary file left behind
