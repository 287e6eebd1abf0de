"""Keep expensive, deterministic results on disk: computed once per machine (built in notebook 01); and a
bounded in-memory LRU of cross-encoder scores for a server, ``ScoreCache`` (built in notebook 06).

Corpus embeddings or cross-encoder scores take minutes on a laptop CPU, and are the same every time for
the same model, data and settings. So each result is stored under a key made from exactly those things:

    key = sha256(json(parts, sorted keys))[:20]        e.g. parts = {model fingerprint, dataset, max_length}

Files live in ``XLAB_CACHE`` if set, else in the user's cache folder (``platformdirs``). A result is written
to a temporary file first and then renamed into place, so a crash never leaves a half-written entry that a
later run would read. Arrays are stored as ``.npy``, everything else as JSON (never pickle). An entry that cannot
be read back whole (cut short by a full disk or a copy, say) is never served: a warning names its file, and it is
computed again and rewritten.

>>> import tempfile, numpy as np
>>> with tempfile.TemporaryDirectory() as tmp:
...     calls = []
...     def compute():
...         calls.append(1)
...         return np.arange(3.0)
...     first = load_or_compute("demo", {"n": 3}, compute, root=tmp)
...     again = load_or_compute("demo", {"n": 3}, compute, root=tmp)
...     (again == first).all(), len(calls)
(np.True_, 1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root``, else ``XLAB_CACHE``, else the user cache folder for xencoder-lab."""
    if root is None:
        root = os.environ.get("XLAB_CACHE")
    if root is None:
        from platformdirs import user_cache_dir

        root = user_cache_dir("xencoder-lab")
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(parts: dict[str, Any]) -> str:
    """A stable key for a dict of settings (order of keys does not matter).

    Python's built-in ``hash()`` is salted per process for strings, so it can never key a disk cache.

    Args:
        parts: JSON-like settings; other values are keyed by ``str()``.

    Returns:
        20 hex characters.

    >>> cache_key({"a": 1, "b": "x"}) == cache_key({"b": "x", "a": 1})
    True
    >>> cache_key({"a": 1}) == cache_key({"a": 2})
    False
    """
    text = json.dumps(parts, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path`` in one step.

    A reader sees either the old file, or the complete new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; the entry it becomes is not
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike, keep_previous: bool = False) -> Iterator[Path]:
    """Write a folder in full under a temporary name beside it, then rename it to ``folder`` in one step.

    A reader sees the old folder or the complete new one, never a half-written one; if the block raises, the
    temporary folder is deleted and ``folder`` is left as it was. An existing ``folder`` is replaced (whether it
    may be is the caller's to check): deleted once the new one is in place, or moved to ``<folder>.previous``
    with ``keep_previous`` (replacing an older one there).

    Args:
        folder: where the folder ends up; its parent is made if needed.
        keep_previous: keep the folder it replaces as ``<folder>.previous``.

    Yields:
        The empty temporary folder (a ``Path``) to write into; it becomes ``folder`` when the block ends.

    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with atomic_folder(Path(tmp) / "model") as staging:
    ...         _ = (staging / "weights.bin").write_bytes(b"...")
    ...     sorted(p.name for p in Path(tmp).rglob("*"))
    ['model', 'weights.bin']
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the folder it becomes is not
    try:
        yield tmp
        aside = None
        if folder.exists():  # out of the way first: a folder cannot be renamed onto a non-empty one
            aside = (folder.with_name(folder.name + ".previous") if keep_previous
                     else Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent)) / folder.name)
            shutil.rmtree(aside, ignore_errors=True)  # an older .previous
            os.replace(folder, aside)
        os.replace(tmp, folder)
        if aside is not None and not keep_previous:
            shutil.rmtree(aside.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


CORRUPT = (ValueError, EOFError, KeyError, zipfile.BadZipFile)  # what numpy and json raise on a cut-short file


@contextlib.contextmanager
def _unless_corrupt(path: Path):
    """Run the block that reads the entry ``path``; if the file is corrupt, warn (naming it) and delete it, so the
    caller goes on to compute the value again."""
    try:
        yield
    except CORRUPT as err:
        warnings.warn(f"cache entry {path} is corrupt ({err}): deleted, computing it again.", stacklevel=4)
        path.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temporary name
        np.save(f, array, allow_pickle=False)


def load_or_compute(
    namespace: str,
    parts: dict[str, Any],
    compute: Callable[[], Any],
    root: str | os.PathLike | None = None,
) -> Any:
    """Return the cached value for ``(namespace, parts)``, computing and storing it on a miss.

    ``compute()`` must return a numpy array (stored as ``.npy``) or a JSON-serialisable value (which comes
    back as JSON gives it: tuples as lists, dict keys as strings).
    A ``.json`` file beside each entry records the ``parts`` it was made from, for people reading the cache.

    Args:
        namespace: the cache's subfolder, one per kind of value (e.g. ``"corpus_embeddings"``).
        parts: every setting the value depends on; the key is ``cache_key(parts)``.
        compute: makes the value on a miss.
        root: the cache folder (default: ``XLAB_CACHE``, else the user cache folder).

    Returns:
        the array or JSON value, from disk or from ``compute()``.
    """
    folder = cache_dir(root) / namespace
    key = cache_key(parts)
    npy, js = folder / f"{key}.npy", folder / f"{key}.json"
    if npy.exists():
        with _unless_corrupt(npy):
            return np.load(npy, allow_pickle=False)
    if js.exists():
        with _unless_corrupt(js):
            return json.loads(js.read_text())["value"]
    value = compute()
    if isinstance(value, np.ndarray):
        _write_array(folder, key, parts, value)
    else:
        payload = json.dumps({"parts": parts, "value": value}, default=str)
        atomic_write(js, lambda tmp: tmp.write_text(payload))
    return value


def store(namespace: str, parts: dict[str, Any], value: np.ndarray, root: str | os.PathLike | None = None) -> bool:
    """Put an array computed elsewhere (e.g. shipped with the course) where ``load_or_compute`` finds it for
    ``(namespace, parts)``; return whether it was new. An entry already there is kept as it is.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     new = store("demo", {"n": 2}, np.zeros(2), root=tmp), store("demo", {"n": 2}, np.ones(2), root=tmp)
    ...     read = load_or_compute("demo", {"n": 2}, lambda: 1 / 0, root=tmp)
    ...     new, read.tolist()
    ((True, False), [0.0, 0.0])
    """
    folder, key = cache_dir(root) / namespace, cache_key(parts)
    if (folder / f"{key}.npy").exists():
        return False
    _write_array(folder, key, parts, value)
    return True


def _write_array(folder: Path, key: str, parts: dict[str, Any], value: np.ndarray) -> None:
    atomic_write(folder / f"{key}.npy", lambda tmp: _save_npy(tmp, value))
    atomic_write(folder / f"{key}.parts.json", lambda tmp: tmp.write_text(json.dumps(parts, default=str)))


def load_or_compute_rows(
    namespace: str,
    parts: dict[str, Any],
    keys: Sequence[str],
    compute: Callable[[list[int]], np.ndarray],
    root: str | os.PathLike | None = None,
) -> np.ndarray:
    """Values (n,) for ``keys`` (texts), each computed once and kept in one file per ``(namespace, parts)``.

    For results made row by row, such as the cross-encoder's logit for each (query, document) pair: a later
    call with other keys computes only the rows not stored yet, ``compute(rows)`` for their positions in
    ``keys``, and adds them to the file (rewritten atomically). A key is stored as the sha256 of its text.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     calls = []
    ...     def length(rows):
    ...         calls.append(rows)
    ...         return np.array([float(len(words[i])) for i in rows])
    ...     words = ["a", "bb"]
    ...     first = load_or_compute_rows("demo", {}, words, length, root=tmp)
    ...     words = ["bb", "ccc"]
    ...     second = load_or_compute_rows("demo", {}, words, length, root=tmp)
    ...     first.tolist(), second.tolist(), calls
    ([1.0, 2.0], [2.0, 3.0], [[0, 1], [1]])
    """
    path = _rows_path(namespace, parts, root)
    digests = [_digest(key) for key in keys]
    stored = _read_rows(path)
    first = {}  # digest -> the first row that has it, for the keys not stored yet
    for i, digest in enumerate(digests):
        if digest not in stored:
            first.setdefault(digest, i)
    missing = list(first.values())
    if missing:
        values = np.asarray(compute(missing), dtype=np.float32).reshape(-1)  # (M,)
        if len(values) != len(missing):
            raise ValueError(f"compute returned {len(values)} values for {len(missing)} rows.")
        stored.update(zip((digests[i] for i in missing), values.tolist()))
        _write_rows(path, stored, parts)
    return np.array([stored[digest] for digest in digests], dtype=np.float32)


def store_rows(
    namespace: str,
    parts: dict[str, Any],
    keys: Sequence[str],
    values: Sequence[float],
    root: str | os.PathLike | None = None,
) -> int:
    """Put values computed elsewhere (e.g. shipped with the course) into the file ``load_or_compute_rows`` reads
    for ``(namespace, parts)``; return how many keys were new. Values already stored are kept as they are.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     new = store_rows("demo", {}, ["a", "b"], [1.0, 2.0], root=tmp)
    ...     again = store_rows("demo", {}, ["b", "c"], [9.0, 3.0], root=tmp)
    ...     read = load_or_compute_rows("demo", {}, ["b", "c"], lambda rows: 1 / 0, root=tmp)
    ...     new, again, read.tolist()
    (2, 1, [2.0, 3.0])
    """
    if len(keys) != len(values):
        raise ValueError(f"{len(keys)} keys but {len(values)} values.")
    path = _rows_path(namespace, parts, root)
    stored = _read_rows(path)
    new = {digest: float(v) for digest, v in zip(map(_digest, keys), values) if digest not in stored}
    if new:
        _write_rows(path, {**stored, **new}, parts)
    return len(new)


def _rows_path(namespace: str, parts: dict[str, Any], root) -> Path:
    return cache_dir(root) / namespace / f"{cache_key(parts)}.npz"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _read_rows(path: Path) -> dict[str, float]:
    if path.exists():
        with _unless_corrupt(path), np.load(path, allow_pickle=False) as npz:
            return dict(zip(npz["keys"].tolist(), npz["values"].tolist()))
    return {}


def _write_rows(path: Path, stored: dict[str, float], parts: dict[str, Any]) -> None:
    names, numbers = np.array(list(stored), dtype="U32"), np.array(list(stored.values()), dtype=np.float32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append ".npz" to the temporary name
            np.savez(f, keys=names, values=numbers)

    atomic_write(path, write)
    atomic_write(path.with_suffix(".parts.json"), lambda tmp: tmp.write_text(json.dumps(parts, default=str)))


class ScoreCache:
    """An in-memory LRU of cross-encoder scores, shared by the threads of one server (built in notebook 06).

    A key is a pair's text (``cross_encoder.pair_key(query, doc)``), kept as its sha256 (the first 128 bits, as in
    ``load_or_compute_rows``: an entry stays small however long the abstract). Not ``hash((query, doc))``, as the
    syllabus's ``CachedCrossEncoder`` has it: that is salted per process for strings, so a key means nothing to
    another worker or after a restart; and it is 64 bits kept in place of the texts, so two pairs whose hashes
    collide silently get each other's score.

    At most ``maxsize`` scores are kept. Each key of a call counts as a hit or a miss and becomes the most recently
    used, in the call's order; adding one past the bound drops the least recently used, exactly as
    ``functools.lru_cache(maxsize)`` does key by key (when a call has at most ``maxsize`` distinct keys).
    ``compute(rows)``, as in ``load_or_compute_rows``, scores the first position of each missing key, once per
    call and outside the lock: other threads' hits do not wait for the model. One cache holds one model's scores.

    Args:
        maxsize: the most scores kept.

    Raises:
        TypeError: ``maxsize`` is not an int.
        ValueError: ``maxsize`` below 1.

    >>> cache = ScoreCache(maxsize=2)
    >>> def score(keys):  # a stand-in for the model: a key's score is its length
    ...     return cache.get_many(keys, lambda rows: [float(len(keys[i])) for i in rows]).tolist()
    >>> score(["a", "bb", "a"])  # "a" twice: a miss, then a hit
    [1.0, 2.0, 1.0]
    >>> score(["ccc", "a"])      # "ccc" drops "bb", the least recently used
    [3.0, 1.0]
    >>> cache.info()
    {'hits': 2, 'misses': 3, 'size': 2, 'maxsize': 2}
    """

    def __init__(self, maxsize: int = 100_000):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int (a number of scores), got {maxsize!r}.")
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize} (for no cache, pass score_cache=None).")
        self.maxsize = maxsize
        self._scores: OrderedDict[str, float] = OrderedDict()  # digest -> score, least recently used first
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_many(self, keys: Sequence[str], compute: Callable[[list[int]], Sequence[float]]) -> np.ndarray:
        """Scores (n,) for ``keys``; ``compute(rows)`` gives those of ``keys[i] for i in rows``, the ones not kept.

        Args:
            keys: n pair keys (``cross_encoder.pair_key``), a sequence, not one string.
            compute: positions in ``keys`` -> their scores, one per position.

        Returns:
            (n,) float32 numpy array, in the order of ``keys``.

        Raises:
            TypeError: one string instead of a sequence.
            ValueError: ``compute`` returned the wrong number of scores.
        """
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string.")
        digests = [_digest(key) for key in keys]
        found, first = {}, {}  # digest -> kept score; digest -> first row of a key to compute
        with self._lock:
            for i, digest in enumerate(digests):
                if digest in self._scores:
                    self._scores.move_to_end(digest)
                    found[digest] = self._scores[digest]
                    self.hits += 1
                elif digest in first:  # missed earlier in this call: lru_cache would hold it by now
                    self.hits += 1
                else:
                    first[digest] = i
                    self.misses += 1
                    while self._scores and len(self._scores) + len(first) > self.maxsize:
                        self._scores.popitem(last=False)  # make room now, where lru_cache would drop one
        if first:
            values = np.asarray(compute(list(first.values())), dtype=np.float32).reshape(-1)  # (M,)
            if len(values) != len(first):
                raise ValueError(f"compute returned {len(values)} values for {len(first)} rows.")
            found.update(zip(first, values.tolist()))
            with self._lock:
                for digest in digests:  # in the call's order, so its last key ends most recently used
                    if digest in first:
                        self._scores[digest] = found[digest]
                    if digest in self._scores:
                        self._scores.move_to_end(digest)
                while len(self._scores) > self.maxsize:  # other threads may have added keys meanwhile
                    self._scores.popitem(last=False)
        return np.array([found[digest] for digest in digests], dtype=np.float32)

    def info(self) -> dict[str, int]:
        """Hits and misses so far, scores kept now, and the bound."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._scores), "maxsize": self.maxsize}

    def clear(self) -> None:
        """Forget every score and reset the counts."""
        with self._lock:
            self._scores.clear()
            self.hits = self.misses = 0


def zipf_stream(items: list, n: int, s: float, seed: int) -> list:
    """``n`` draws from ``items``, the one at rank r (after a seeded shuffle) with probability ~ r^-s: a workload
    of repeated queries, a few popular and a long tail, for measuring a cache.

    Args:
        items: the distinct items (e.g. query texts).
        n: draws.
        s: the Zipf exponent; larger concentrates the draws on fewer items.
        seed: seed of the shuffle and the draws.

    Returns:
        a list of ``n`` items, with repeats.

    >>> stream = zipf_stream(list("abcdefghij"), n=1000, s=1.1, seed=0)
    >>> len(stream), max(stream.count(x) for x in set(stream)) > 250     # the most popular item: about a third
    (1000, True)
    """
    rng = np.random.default_rng(seed)
    ranked = [items[i] for i in rng.permutation(len(items))]
    p = np.arange(1, len(items) + 1, dtype=float) ** -s
    return [ranked[i] for i in rng.choice(len(items), size=n, p=p / p.sum())]
