"""Checks for notebook 06's exercises: MarginMSE against ``losses.margin_mse_loss``, a reranker's score served
from an LRU cache with a stable key against ``cache.ScoreCache``, and a read-off of the quality/latency frontier.
"""

from __future__ import annotations

import builtins
import contextlib
import pickle
from collections import OrderedDict

import torch

from xencoder_lab import losses
from xencoder_lab.cache import ScoreCache
from xencoder_lab.cross_encoder import pair_key
from xencoder_lab.exercises import Case, check, check_answer


def _as_number(fn):
    """``fn`` with a scalar tensor result given as a float, so that a verdict prints it as a number."""
    def call(*args):
        value = fn(*args)
        return value.item() if isinstance(value, torch.Tensor) and value.ndim == 0 else value

    return call


def check_margin_mse(margin_mse) -> bool | None:
    """Exercise 1: ``margin_mse(scores, teacher)``, both (G, W) with the positive in column 0, a scalar."""
    t = torch.tensor
    cases = [
        Case("the student is the teacher + 5", (t([[14.0, 9.0, 6.0]]), t([[9.0, 4.0, 1.0]])),
             hint="compare margins, the positive's score minus a negative's for the student and the teacher alike, "
                  "not raw scores: a student shifted by a constant from its teacher has MarginMSE 0"),
        Case("one group and one negative", (t([[3.0, 0.0]]), t([[1.0, 0.0]])),
             hint="the loss is ((s0 - s1) - (t0 - t1)) squared: the difference of the two margins, squared (not "
                  "its absolute value)"),
        Case("one group with two negatives", (t([[5.0, 1.0, 2.0]]), t([[3.0, 1.0, 1.0]])),
             hint="with two negatives there are two margins, s0 - s1 and s0 - s2: average their squared "
                  "differences from the teacher's (a mean, not a sum)"),
        Case("two negatives with other margins", (t([[4.0, 1.0, 0.0]]), t([[3.0, 1.0, 0.0]])),
             hint="every margin is taken from the positive in column 0, s[:, 0] - s[:, j], not between "
                  "neighbouring scores"),
        Case("two groups", (t([[4.0, 1.0, 0.0], [2.0, 2.0, 0.0]]), t([[3.0, 1.0, 0.0], [2.0, 0.0, 0.0]])),
             hint="average over the groups too, every one of the G x (W - 1) margins: a batch's loss must not grow "
                  "with its number of groups"),
    ]
    return check("Exercise 1 (MarginMSE)", _as_number(margin_mse), _as_number(losses.margin_mse_loss), cases)


def _model(query: str, doc: str) -> float:
    """A stand-in for the reranker: a deterministic score of a pair."""
    return len(query) + len(doc) / 100


@contextlib.contextmanager
def _another_process():
    """``hash()`` as the next process computes it: Python salts the hash of every string anew in each process
    (``PYTHONHASHSEED``), so the same text gets another value after a restart or in another worker."""
    real = builtins.hash
    builtins.hash = lambda value: real(("another process", value))
    try:
        yield
    finally:
        builtins.hash = real


def _stream_through(cached_score):
    """The learner's ``cached_score(cache, query, doc, score, maxsize)`` run on a stream of pairs, with an
    ``OrderedDict`` as the cache; at ``restart`` the cache is saved and read back by "the next process".
    Returns the scores and the positions in the stream that the model had to score (None if it returned None)."""

    def run(stream: list[tuple[str, str]], maxsize: int, restart: int | None = None) -> tuple | None:
        cache, calls, scores = OrderedDict(), [], []
        for i, (query, doc) in enumerate(stream):
            def score(q, d, i=i):
                calls.append(i)
                return _model(q, d)

            if i == restart:
                cache = pickle.loads(pickle.dumps(cache))  # saved by one process, read back by the next
            with _another_process() if restart is not None and i >= restart else contextlib.nullcontext():
                value = cached_score(cache, query, doc, score, maxsize)
            if value is None:
                return None
            scores.append(value)
        return scores, calls

    return run


def _score_cache(stream: list[tuple[str, str]], maxsize: int, restart: int | None = None) -> tuple:
    """The same stream through the package's ``ScoreCache`` (its key, a sha256 of the texts, survives a restart)."""
    cache, calls, scores = ScoreCache(maxsize), [], []
    for i, (query, doc) in enumerate(stream):
        def compute(rows, i=i, query=query, doc=doc):
            calls.append(i)
            return [_model(query, doc)]

        scores.append(round(float(cache.get_many([pair_key(query, doc)], compute)[0]), 4))  # kept as float32
    return scores, calls


def check_cached_score(cached_score) -> bool | None:
    """Exercise 2: ``cached_score(cache, query, doc, score, maxsize)``, one pair's score through an LRU cache
    (an ``OrderedDict``, least recently used first) whose key is the same in every process."""
    a, b, c = ("a claim", "its abstract"), ("another claim", "an abstract"), ("a third claim", "a long abstract")
    cases = [
        Case("a repeated pair", ([a, b, a], 4),
             hint="keep each score under its pair's key and call score() only for a pair the cache does not hold"),
        Case("a full cache", ([a, b, c, a], 2),
             hint="keep at most maxsize scores: when one more comes, drop the least recently used (the first of "
                  "the OrderedDict, popitem(last=False)), not the newest"),
        Case("a hit on a full cache", ([a, b, a, c, b], 2),
             hint="a hit makes its pair the most recently used (move_to_end): otherwise a popular pair is dropped "
                  "as if it were old"),
        Case("two pairs whose texts run together", ([("ab", "c"), ("a", "bc")], 4),
             hint="('ab', 'c') and ('a', 'bc') are different pairs: key by both texts with a separator no text "
                  "holds ('\\0'), not by query + doc"),
        Case("a restart: the next process reads the saved cache", ([a, b, a, b], 4), kwargs={"restart": 2},
             hint="the key must be the same in every process: Python's hash() of a string is salted per process, "
                  "so use the texts themselves or hashlib.sha256 of them"),
    ]
    return check("Exercise 2 (an LRU of scores)", _stream_through(cached_score), _score_cache, cases)


def check_best_unseen_under_budget(answer: float | None, frontier: dict) -> bool | None:
    """Exercise 3: the best nDCG@10 on unseen-answer claims among the frontier's rows whose rerank stage takes at
    most 0.5 s (p50); ``frontier`` is the notebook's ``{(reranker, rerank depth): {"p50 s": ..., "unseen": ...}}``."""
    title = "Exercise 3 (the frontier)"
    if answer is None:
        return check_answer(title, None, 0.0, 0.0, "")
    under = [row["unseen"] for row in frontier.values() if row["p50 s"] <= 0.5]
    if not under:
        print(f"{title}: no reranker met 0.5 s on this machine, so there is nothing to read.")
        return None
    return check_answer(title, answer, max(under), 1e-3,
                        "keep the rows whose 'p50 s' is at most 0.5, then take the largest value of their "
                        "'unseen' column")
