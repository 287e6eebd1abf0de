"""Notebook 06's checks: the solution and the package's own function pass; each named wrong version fails with
the hint for its mistake; no guess passes the read-off."""

import hashlib

import pytest

from xencoder_lab import losses
from xencoder_lab.exercises import nb06
from xencoder_lab.solutions import nb06 as solutions


def margin_mse_raw_scores(scores, teacher):
    return ((scores - teacher) ** 2).mean()


def margin_mse_teacher_reversed(scores, teacher):
    return (((scores[:, :1] - scores[:, 1:]) - (teacher[:, 1:] - teacher[:, :1])) ** 2).mean()


def margin_mse_not_squared(scores, teacher):
    return ((scores[:, :1] - scores[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])).mean()


def margin_mse_absolute(scores, teacher):
    return ((scores[:, :1] - scores[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])).abs().mean()


def margin_mse_per_group(scores, teacher):  # the mean over one axis only: a loss per group
    return (((scores[:, :1] - scores[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])) ** 2).mean(1)


def margin_mse_summed_over_negatives(scores, teacher):
    return (((scores[:, :1] - scores[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])) ** 2).sum(1).mean()


def margin_mse_neighbours(scores, teacher):  # margins against the wrong document: the one before, not the positive
    return (((scores[:, :-1] - scores[:, 1:]) - (teacher[:, :-1] - teacher[:, 1:])) ** 2).mean()


def margin_mse_summed_over_groups(scores, teacher):  # the mean over one axis only, the negatives
    return (((scores[:, :1] - scores[:, 1:]) - (teacher[:, :1] - teacher[:, 1:])) ** 2).mean(1).sum()


def lru(key, cache, query, doc, score, maxsize, refresh=True, evict_newest=False, bounded=True):
    """An OrderedDict LRU with the given key and one mistake switched on."""
    if key in cache:
        if refresh:
            cache.move_to_end(key)
        return cache[key]
    if bounded and len(cache) >= maxsize:
        cache.popitem(last=evict_newest)
    cache[key] = score(query, doc)
    return cache[key]


def sha(query, doc):
    return hashlib.sha256((query + "\0" + doc).encode()).hexdigest()


def never_cached(cache, query, doc, score, maxsize):
    return score(query, doc)


def evicts_the_newest(cache, query, doc, score, maxsize):
    return lru(sha(query, doc), cache, query, doc, score, maxsize, evict_newest=True)


def never_evicts(cache, query, doc, score, maxsize):
    return lru(sha(query, doc), cache, query, doc, score, maxsize, bounded=False)


def hit_keeps_its_place(cache, query, doc, score, maxsize):
    return lru(sha(query, doc), cache, query, doc, score, maxsize, refresh=False)


def texts_run_together(cache, query, doc, score, maxsize):
    return lru(hashlib.sha256((query + doc).encode()).hexdigest(), cache, query, doc, score, maxsize)


def salted_hash(cache, query, doc, score, maxsize):
    return lru(hash((query, doc)), cache, query, doc, score, maxsize)


def test_solutions_and_the_package_pass(capsys):
    assert nb06.check_margin_mse(solutions.margin_mse) is True
    assert nb06.check_margin_mse(losses.margin_mse_loss) is True
    assert nb06.check_cached_score(solutions.cached_score) is True
    assert nb06.check_cached_score(lambda cache, q, d, score, n: lru((q, d), cache, q, d, score, n)) is True


@pytest.mark.parametrize("wrong, words", [
    (margin_mse_raw_scores, "compare margins"),
    (margin_mse_teacher_reversed, "for the student and the teacher alike"),
    (margin_mse_not_squared, "the difference of the two margins, squared"),
    (margin_mse_absolute, "not its absolute value"),
    (margin_mse_summed_over_negatives, "a mean, not a sum"),
    (margin_mse_neighbours, "from the positive in column 0"),
    (margin_mse_summed_over_groups, "average over the groups too"),
    (margin_mse_per_group, "The shape is (1,), expected ()"),
])
def test_margin_mse_mistakes_are_named(wrong, words, capsys):
    assert nb06.check_margin_mse(wrong) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (never_cached, "call score() only for a pair the cache does not hold"),
    (evicts_the_newest, "drop the least recently used"),
    (never_evicts, "keep at most maxsize scores"),
    (hit_keeps_its_place, "a hit makes its pair the most recently used"),
    (texts_run_together, "not by query + doc"),
    (salted_hash, "hash() of a string is salted per process"),
])
def test_cache_mistakes_are_named(wrong, words, capsys):
    assert nb06.check_cached_score(wrong) is False
    assert words in capsys.readouterr().out


def test_the_salt_is_put_back(capsys):
    nb06.check_cached_score(salted_hash)
    assert hash("a text") == hash("a text") and hash.__module__ == "builtins"


def test_an_unwritten_cache_says_not_done(capsys):
    assert nb06.check_cached_score(lambda cache, query, doc, score, maxsize: None) is None
    assert "not done yet" in capsys.readouterr().out


def test_frontier_read_off_takes_no_guess(capsys):
    frontier = {("cross-encoder", 10): {"p50 s": 0.41, "all": 0.731, "unseen": 0.664},
                ("cross-encoder", 100): {"p50 s": 4.3, "all": 0.758, "unseen": 0.649},
                ("small int8, fused a = 0.5", 20): {"p50 s": 0.06, "all": 0.715, "unseen": 0.712}}
    assert nb06.check_best_unseen_under_budget(None, frontier) is None
    assert nb06.check_best_unseen_under_budget(0.712, frontier) is True
    assert nb06.check_best_unseen_under_budget(0.664, frontier) is False  # the teacher's row, not the best
    for guess in (0.0, 0.5, 1.0):
        assert nb06.check_best_unseen_under_budget(guess, frontier) is False
    assert nb06.check_best_unseen_under_budget(0.7, {("cross-encoder", 100): frontier["cross-encoder", 100]}) is None
    assert "nothing to read" in capsys.readouterr().out
