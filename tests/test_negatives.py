import numpy as np
import pytest

from xencoder_lab.data import document_text
from xencoder_lab.negatives import (
    mine_from_candidates,
    mine_groups,
    mine_hard_negatives,
    mine_negatives,
    top_candidates,
)


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


def test_mine_negatives_takes_the_best_that_pass_the_margin_without_repeats():
    rng = np.random.default_rng(2)
    scores = rng.uniform(0, 1, size=(30, 25))
    positives = rng.integers(0, 25, size=30).tolist()
    relevant = [{p, (p + 3) % 25} for p in positives]
    before = scores.copy()
    mined = mine_negatives(scores, positives, relevant, n=4)
    assert np.array_equal(scores, before)  # the caller's scores are not changed
    for row, pos, rel, negs in zip(scores, positives, relevant, mined):
        passing = [int(d) for d in np.argsort(-row) if d not in rel and row[d] < 0.95 * row[pos]]
        if len(passing) >= 4:
            assert negs == passing[:4]
    free = mine_negatives(scores, positives, relevant, n=4, margin=None)  # no margin: simply the best non-relevant
    for row, rel, negs in zip(scores, relevant, free):
        assert negs == [int(d) for d in np.argsort(-row) if d not in rel][:4]


def test_mine_groups_builds_text_groups_without_judged_documents(toy):
    pairs = [(q, d) for q, judged in toy.qrels.items() for d, grade in judged.items() if grade > 0]
    doc_ids = list(toy.corpus)
    scores = np.random.default_rng(0).uniform(size=(len(pairs), len(doc_ids)))
    groups = mine_groups(toy, pairs, scores, n=3)
    assert len(groups) == len(pairs)
    for (q, d), (query, positive, negatives) in zip(pairs, groups):
        assert query == toy.queries[q] and positive == document_text(toy.corpus[d])
        judged_texts = {document_text(toy.corpus[j]) for j in toy.qrels[q]}
        assert len(negatives) == 3 and not judged_texts & set(negatives)
    with pytest.raises(ValueError, match="need scores"):
        mine_groups(toy, pairs, scores[:, :-1], n=3)


def test_mining_top_candidates_matches_the_full_matrix():
    rng = np.random.default_rng(0)
    q_emb, d_emb = rng.standard_normal((40, 8)), rng.standard_normal((300, 8))  # (Q, D), (N, D)
    full = q_emb @ d_emb.T  # (Q, N): what top_candidates never holds whole
    positives = [int(np.argsort(-row)[3]) for row in full]  # each query's 4th best document
    relevant = [{p, int(np.argsort(-row)[0])} for p, row in zip(positives, full)]  # and its best, also relevant
    scores, columns = top_candidates(q_emb, d_emb, depth=30, chunk=7)
    assert columns.shape == (40, 30) and (np.diff(scores, axis=1) <= 0).all()
    np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :30])
    expected = mine_negatives(full, positives, relevant, n=3, margin=0.95)
    mined = mine_from_candidates(scores, columns, full[np.arange(40), positives], relevant, n=3)
    assert mined == expected
    assert not any(set(m) & rel for m, rel in zip(mined, relevant))
    with pytest.raises(ValueError, match="depth=301"):
        top_candidates(q_emb, d_emb, depth=301)


def test_spread_negatives_come_from_the_whole_top_depth_after_the_hardest():
    rng = np.random.default_rng(4)
    scores = rng.uniform(0, 1, size=(60, 200))
    positives = [int(np.argsort(-row)[10]) for row in scores]  # each query's 11th best, as a retriever's positive
    relevant = [{p, (p + 5) % 200} for p in positives]
    hardest = mine_negatives(scores, positives, relevant, n=3)
    spread = mine_negatives(scores, positives, relevant, n=3, spread=4, depth=50, seed=1)
    ranks = []
    for row, rel, hard, negs in zip(scores, relevant, hardest, spread):
        top = [int(d) for d in np.argsort(-row)[:50]]
        assert negs[:3] == hard and len(negs) == 7 and len(set(negs)) == 7  # the hardest first, then 4 more
        assert all(d in top and d not in rel for d in negs[3:])
        ranks += [top.index(d) for d in negs[3:]]
    assert np.mean(ranks) > 15  # drawn over the whole top 50, not its head (uniform: about 26)
    assert spread == mine_negatives(scores, positives, relevant, n=3, spread=4, depth=50, seed=1)
    assert spread != mine_negatives(scores, positives, relevant, n=3, spread=4, depth=50, seed=2)
    short = mine_negatives(scores[:1, :6], [0], [{0, 1}], n=1, spread=9, depth=6)  # only 3 candidates left
    assert len(short[0]) == 4 and not {0, 1} & set(short[0])
