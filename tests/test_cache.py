import functools
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from xencoder_lab.cache import ScoreCache, atomic_folder, atomic_write, cache_dir, cache_key, load_or_compute


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


def test_atomic_folder_is_whole_or_absent(tmp_path):
    """A crash mid-write leaves the old folder (or none) and no temporary folder; a finished write replaces the old
    folder, or keeps it as .previous; a stray entry in the new folder is written, not merged with the old one."""
    target = tmp_path / "model"

    def write(text, **options):
        with atomic_folder(target, **options) as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub" / "weights").write_text(text)
            if text == "half":
                raise RuntimeError("killed mid-write")

    def tree():
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    with pytest.raises(RuntimeError):
        write("half")
    assert tree() == []  # nothing half-written, no temporary left
    write("v1")
    with pytest.raises(RuntimeError):
        write("half")
    assert tree() == ["model", "model/sub", "model/sub/weights"] and (target / "sub" / "weights").read_text() == "v1"
    (target / "old-only").write_text("x")
    write("v2")
    assert tree() == ["model", "model/sub", "model/sub/weights"] and (target / "sub" / "weights").read_text() == "v2"
    write("v3", keep_previous=True)
    write("v4", keep_previous=True)  # the older .previous (v2) goes
    assert (target / "sub" / "weights").read_text() == "v4"
    assert (tmp_path / "model.previous" / "sub" / "weights").read_text() == "v3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.previous"]


def by_length(keys, log=None):
    """compute for ScoreCache.get_many: a key's score is its length; ``log`` collects the keys computed."""

    def compute(rows):
        if log is not None:
            log.extend(keys[i] for i in rows)
        return [float(len(keys[i])) for i in rows]

    return compute


def lookup(cache, keys, log=None):
    return cache.get_many(keys, by_length(keys, log)).tolist()


def test_score_cache_keeps_the_most_recently_used(tmp_path):
    cache, log = ScoreCache(maxsize=3), []
    assert lookup(cache, ["a", "bb", "ccc"], log) == [1.0, 2.0, 3.0] and log == ["a", "bb", "ccc"]
    assert lookup(cache, ["a"], log) == [1.0] and len(log) == 3  # a hit: "a" is now the most recent
    assert lookup(cache, ["dddd"], log) == [4.0]  # full: drops "bb", the least recently used
    log.clear()
    assert lookup(cache, ["ccc", "a", "dddd", "bb"], log) == [3.0, 1.0, 4.0, 2.0]
    assert log == ["bb"]  # the only key dropped; adding it back drops "ccc", used least recently
    assert cache.info() == {"hits": 4, "misses": 5, "size": 3, "maxsize": 3}
    log.clear()
    lookup(cache, ["ccc"], log)
    assert log == ["ccc"]
    cache.clear()
    assert cache.info() == {"hits": 0, "misses": 0, "size": 0, "maxsize": 3}


def test_score_cache_counts_repeats_within_a_call_and_computes_each_key_once():
    cache, rows = ScoreCache(maxsize=10), []

    def compute(positions):
        rows.append(positions)
        return [10.0 * i for i in positions]

    assert cache.get_many(["x", "y", "x", "x"], compute).tolist() == [0.0, 10.0, 0.0, 0.0]
    assert rows == [[0, 1]]  # the first position of each missing key, once
    assert cache.info()["hits"] == 2 and cache.info()["misses"] == 2
    assert cache.get_many([], compute).tolist() == [] and rows == [[0, 1]]


def zipf_keys(n, vocabulary, s, seed):
    rng = np.random.default_rng(seed)
    p = np.arange(1, vocabulary + 1) ** -s
    return [f"pair {k}" for k in rng.choice(vocabulary, size=n, p=p / p.sum())]


@pytest.mark.parametrize("maxsize", [1, 2, 7, 40])
def test_score_cache_counts_as_functools_lru_cache(maxsize):
    """The library's LRU, fed the same keys one by one, hits and misses as often as ours fed them in calls."""
    keys = zipf_keys(3000, vocabulary=200, s=1.1, seed=maxsize)
    reference = functools.lru_cache(maxsize=maxsize)(len)
    for key in keys:
        reference(key)
    ours, rng, start = ScoreCache(maxsize), np.random.default_rng(0), 0
    while start < len(keys):  # calls of 1 to maxsize keys, as a query's candidates arrive together
        end = start + int(rng.integers(1, maxsize + 1))
        lookup(ours, keys[start:end])
        start = end
    expected = reference.cache_info()
    assert ours.info() == {"hits": expected.hits, "misses": expected.misses, "size": expected.currsize,
                           "maxsize": maxsize}
    assert 0 < expected.hits < len(keys)  # the workload exercises both


def test_score_cache_is_safe_under_threads():
    """Threads share keys: counts add up, the bound holds, each key gets its own score. Under the GIL a race is
    rare per call: without the lock, 8 threads x 4,000 calls fail about 8 runs in 10 (a KeyError)."""
    maxsize, calls = 16, 4000
    cache, asked, sizes, errors, stop = ScoreCache(maxsize), [], [], [], threading.Event()

    def hammer(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(calls):  # keys 0 to 59, more than fit: threads keep evicting each other's
                batch = [f"pair {i}" for i in rng.integers(0, 24 if seed % 2 else 60, size=rng.integers(1, 12))]
                scores = cache.get_many(batch, lambda rows, keys=batch: [float(keys[i][5:]) for i in rows])
                assert scores.tolist() == [float(key[5:]) for key in batch]  # each key's own score
                asked.append(len(batch))
        except Exception as err:  # reported by the main thread
            errors.append(err)

    def watch():
        while not stop.is_set():
            sizes.append(cache.info()["size"])

    watcher, threads = threading.Thread(target=watch), [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        for t in [watcher, *threads]:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        watcher.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    info = cache.info()
    assert info["hits"] + info["misses"] == sum(asked) and len(asked) == 8 * calls
    assert info["hits"] > 0 and info["misses"] >= 60
    assert len(sizes) > 0 and max(sizes) <= maxsize and info["size"] == maxsize


def test_score_cache_computes_outside_its_lock():
    """While the model scores one thread's misses, another thread can use the cache."""
    cache, answered = ScoreCache(maxsize=4), []

    def compute(rows):
        other = threading.Thread(target=lambda: answered.append(cache.info()))
        other.start()
        other.join(timeout=5)
        return [1.0] * len(rows)

    cache.get_many(["a", "b"], compute)
    assert answered == [{"hits": 0, "misses": 2, "size": 0, "maxsize": 4}]


def test_score_cache_bad_arguments():
    for size in (0, -3):
        with pytest.raises(ValueError, match="maxsize must be at least 1"):
            ScoreCache(size)
    for size in (2.5, "10", True, None):
        with pytest.raises(TypeError, match="maxsize must be an int"):
            ScoreCache(size)
    cache = ScoreCache(4)
    with pytest.raises(TypeError, match="not one string"):
        cache.get_many("ab", lambda rows: [0.0] * len(rows))
    with pytest.raises(ValueError, match="compute returned 1 values for 2 rows"):
        cache.get_many(["a", "b"], lambda rows: [0.0])
    assert cache.info()["size"] == 0  # nothing half-stored
