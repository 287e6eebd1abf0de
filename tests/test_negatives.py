import numpy as np
import pytest

from xencoder_lab.negatives import mine_hard_negatives


def test_never_returns_a_relevant_document_and_respects_the_margin():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, size=(50, 40))
    positives = rng.integers(0, 40, size=50).tolist()
    relevant = [{p, (p + 1) % 40} for p in positives]
    negatives = mine_hard_negatives(scores, positives, relevant, depth=5, margin=0.95)
    for row, pos, rel, neg in zip(scores, positives, relevant, negatives):
        assert neg not in rel
        if row[neg] < 0.95 * row[pos]:  # a mined one: among the 5 best that pass the margin
            passing = [d for d in np.argsort(-row) if d not in rel and row[d] < 0.95 * row[pos]]
            assert neg in passing[:5]


def test_falls_back_to_a_random_negative_and_is_seeded():
    scores = np.array([[0.1, 0.9, 0.8]])  # the positive scores lowest: no candidate passes the margin
    assert mine_hard_negatives(scores, [0], [{0}]) in ([1], [2])
    rng = np.random.default_rng(1)
    scores = rng.uniform(size=(20, 30))
    args = (scores, [0] * 20, [{0}] * 20)
    assert mine_hard_negatives(*args, seed=3) == mine_hard_negatives(*args, seed=3)


def test_shapes_are_checked():
    with pytest.raises(ValueError):
        mine_hard_negatives(np.zeros((2, 3)), [0], [{0}])
