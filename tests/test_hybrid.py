import numpy as np
import pytest

from xencoder_lab import metrics
from xencoder_lab.bm25 import BM25
from xencoder_lab.data import document_text
from xencoder_lab.hybrid import Hybrid
from xencoder_lab.pipeline import FUSIONS, Pipeline, fuse
from xencoder_lab.retrieval import searcher_for


class Fixed:
    """A first stage that returns fixed ranked lists (one per query) over a corpus of ``size`` documents."""

    def __init__(self, ranked: dict[str, float], size: int = 10):
        self.ranked, self.size = ranked, size

    def __len__(self):
        return self.size

    def search(self, queries, k=100):
        top = sorted(self.ranked, key=lambda d: -self.ranked[d])[:k]
        return [top for _ in queries], np.array([[self.ranked[d] for d in top]] * len(queries), dtype=np.float32)


SPARSE = Fixed({"a": 12.0, "b": 8.0, "c": 2.0})  # BM25-like scores
DENSE = Fixed({"c": 0.9, "d": 0.7, "a": 0.5})  # cosine-like scores


def test_fused_scores_follow_the_formula():
    ids, scores = Hybrid(SPARSE, DENSE, weight=0.25, depth=3).search(["q"], k=4)
    # union a, b, c, d; b is missing from the dense list (gets its lowest, 0.5), d from the sparse one (2.0)
    n_sparse = {"a": 1.0, "b": 0.6, "c": 0.0, "d": 0.0}
    n_dense = {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.5}
    expected = {d: 0.25 * n_sparse[d] + 0.75 * n_dense[d] for d in n_sparse}
    assert ids[0] == sorted(expected, key=lambda d: -expected[d])
    assert np.allclose(scores[0], [expected[d] for d in ids[0]])


@pytest.mark.parametrize("weight, first", [(1.0, ["a", "b"]), (0.0, ["c", "d"])])
def test_the_end_weights_give_one_stage_alone(weight, first):
    ids, _ = Hybrid(SPARSE, DENSE, weight=weight, depth=3).search(["q"], k=2)
    assert ids[0] == first


def test_depth_limits_what_each_stage_contributes():
    ids, _ = Hybrid(SPARSE, DENSE, weight=0.5, depth=1).search(["q"], k=1)
    assert ids[0][0] in {"a", "c"}  # the union of the two top-1s
    ids, scores = Hybrid(SPARSE, DENSE, weight=0.5, depth=1).search(["q"], k=3)  # k > depth: each returns k
    assert len(ids[0]) == 3 and list(scores[0]) == sorted(scores[0], reverse=True)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="between 0"):
        Hybrid(SPARSE, DENSE, weight=1.5)
    with pytest.raises(ValueError, match="same corpus"):
        Hybrid(SPARSE, Fixed({"a": 1.0}, size=11))
    with pytest.raises(ValueError, match="depth=0"):
        Hybrid(SPARSE, DENSE, depth=0)
    with pytest.raises(ValueError, match="k=11"):
        Hybrid(SPARSE, DENSE).search(["q"], k=11)


def test_on_the_toy_it_ranks_like_its_stages_and_feeds_a_pipeline(toy, small_bi_encoder, warm):
    texts = {d: document_text(doc) for d, doc in toy.corpus.items()}
    bm25 = BM25(list(texts.values()), list(texts))
    hybrid = Hybrid.over(toy, small_bi_encoder, weight=1.0, depth=len(toy.corpus))
    query = [toy.queries["q5"]]
    top = bm25.search(query, k=3)
    assert len(set(top[1][0].tolist())) == 3 and hybrid.search(query, k=3)[0] == top[0]  # b = 1: BM25's order
    hybrid.weight = 0.5
    run = Pipeline(toy, hybrid).run(depth=5, k=10)
    assert metrics.evaluate(run, toy.qrels, ["ndcg@10"])["ndcg@10"] > 0.5
    result = Pipeline(toy, hybrid, warm, fusion=0.5).search(toy.queries["q5"], depth=8, k=3)
    assert set(result.ids) <= set(result.first_stage_ids) and result.scores == sorted(result.scores, reverse=True)


def test_z_score_fusion_standardises_each_list_over_the_union():
    ids, scores = Hybrid(SPARSE, DENSE, weight=0.25, depth=3, fusion="z-score").search(["q"], k=4)
    # the union a, b, c, d, each list's missing document at its lowest score, then (x - mean) / std (ddof 0)
    sparse, dense = np.array([12.0, 8.0, 2.0, 2.0]), np.array([0.5, 0.5, 0.9, 0.7])
    z_sparse, z_dense = (sparse - sparse.mean()) / sparse.std(), (dense - dense.mean()) / dense.std()
    expected = dict(zip("abcd", 0.25 * z_sparse + 0.75 * z_dense))
    assert ids[0] == sorted(expected, key=lambda d: -expected[d])
    assert np.allclose(scores[0], [expected[d] for d in ids[0]])


def test_rrf_matches_a_hand_computation():
    # ranks: sparse a 1, b 2, c 3 (d missing); dense c 1, d 2, a 3 (b missing); k = 60, b = 0.5
    ids, scores = Hybrid(SPARSE, DENSE, weight=0.5, depth=3, fusion="rrf").search(["q"], k=4)
    expected = {"a": 0.5 / 61 + 0.5 / 63, "b": 0.5 / 62, "c": 0.5 / 63 + 0.5 / 61, "d": 0.5 / 62}
    assert ids[0] == ["c", "a", "d", "b"]  # a and c tie at 1/61 + 1/63 (dense order first), d and b at 1/62
    assert np.allclose(scores[0], [expected[d] for d in ids[0]])
    weighted = fuse({"x": 3.0, "y": 1.0}, {"y": 5.0}, weight=0.8, how="rrf", k=0)  # x: ranks -, 1; y: 1, 2
    assert weighted == pytest.approx({"y": 0.8 / 1 + 0.2 / 2, "x": 0.2 / 1})


@pytest.mark.parametrize("how", FUSIONS)
def test_edge_cases_one_candidate_all_equal_and_missing(how):
    one = fuse({"a": 3.0}, {"a": -2.0}, weight=0.3, how=how)
    assert list(one) == ["a"] and np.isfinite(one["a"])
    flat = fuse({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 1.0, "c": 1.0}, weight=0.5, how=how)
    assert len(set(flat.values())) == 1  # no list knows anything: every candidate ties
    missing = fuse({"a": 2.0, "b": 1.0}, {"a": 2.0, "c": 1.0}, weight=0.5, how=how)  # b, c each missing once
    assert set(missing) == {"a", "b", "c"} and missing["b"] < missing["a"] and missing["c"] < missing["a"]
    assert max(fuse({"a": 2.0, "b": 1.0}, {"b": 5.0, "a": 0.0}, weight=1.0, how=how).items(),
               key=lambda item: item[1])[0] == "b"  # weight 1: the second list alone decides
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse({"a": 1.0}, {"a": 1.0}, weight=0.5, how="max")


def test_the_defaults_are_unchanged_min_max():
    assert Hybrid(SPARSE, DENSE).fusion == "min-max" and Hybrid(SPARSE, DENSE).weight == 0.5
    first, second = {"a": 10.0, "b": 0.0, "c": 5.0}, {"a": -1.0, "b": 3.0, "c": 1.0}
    assert fuse(first, second, 0.25) == fuse(first, second, 0.25, how="min-max") == {"a": 0.75, "b": 0.25, "c": 0.5}
    with pytest.raises(ValueError, match="unknown fusion"):
        Hybrid(SPARSE, DENSE, fusion="z")


class Noise:
    """A first stage that knows nothing: every document of the corpus with a random score (seeded)."""

    def __init__(self, ids, seed: int):
        self.ids, self.seed = list(ids), seed

    def __len__(self):
        return len(self.ids)

    def search(self, queries, k=100):
        rng = np.random.default_rng(self.seed)
        scores = rng.random((len(queries), len(self.ids)))  # (Q, N)
        order = np.argsort(-scores, axis=1)[:, :k]  # (Q, k)
        return [[self.ids[i] for i in row] for row in order], np.take_along_axis(scores, order, axis=1)


def test_z_score_holds_up_when_one_list_is_pure_noise(toy, small_bi_encoder):
    """The command's hybrid (z-score, b = 0.5) beside a list that knows nothing stays near the good list alone;
    min-max at the same weight falls further, RRF furthest. Z-score measures a score against its list's spread:
    a good list's best matches stand several standard deviations above the rest, noise's never do (uniform
    scores: |z| < 1.8), while min-max and RRF give noise's top document the full score of the good list's."""
    texts = {d: document_text(doc) for d, doc in toy.corpus.items()}
    n = len(texts)

    def ndcg(stage):
        return metrics.evaluate(Pipeline(toy, stage).run(depth=n, k=n), toy.qrels, ["ndcg@10"])["ndcg@10"]

    for good in (BM25(list(texts.values()), list(texts)), searcher_for(small_bi_encoder, toy)):
        alone = ndcg(good)
        fused = {how: np.mean([ndcg(Hybrid(Noise(texts, seed), good, weight=0.5, depth=n, fusion=how))
                               for seed in range(20)]) for how in FUSIONS}  # noise in the sparse slot
        assert alone - fused["z-score"] < 0.08
        assert fused["z-score"] > fused["min-max"] > fused["rrf"]
