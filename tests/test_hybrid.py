import numpy as np
import pytest

from xencoder_lab import metrics
from xencoder_lab.bm25 import BM25
from xencoder_lab.data import document_text
from xencoder_lab.hybrid import Hybrid
from xencoder_lab.pipeline import Pipeline


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
    run = Pipeline(toy, hybrid).run(k1=5, k=10)
    assert metrics.evaluate(run, toy.qrels, ["ndcg@10"])["ndcg@10"] > 0.5
    result = Pipeline(toy, hybrid, warm, fusion=0.5).search(toy.queries["q5"], k1=8, k2=3)
    assert set(result.ids) <= set(result.first_stage_ids) and result.scores == sorted(result.scores, reverse=True)
