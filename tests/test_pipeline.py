import numpy as np
import pytest

from xencoder_lab import bi_encoder as bi_encoder_module
from xencoder_lab.bm25 import BM25
from xencoder_lab.cache import ScoreCache
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.retrieval import DenseRetriever


@pytest.fixture(scope="module")
def reranker(warm):
    return warm


def test_bm25_then_rerank(toy, reranker):
    pipe = Pipeline(toy, first_stage="bm25", reranker=reranker)
    result = pipe.search(toy.queries["q5"], depth=8, k=3)
    assert len(result.first_stage_ids) == 8 and len(result.ids) == 3
    assert set(result.ids) <= set(result.first_stage_ids)
    assert result.scores == sorted(result.scores, reverse=True)
    assert set(result.seconds) == {"first_stage", "rerank"} and all(s >= 0 for s in result.seconds.values())
    assert result.ids[0] == "d14"  # salt and blood pressure


def test_without_reranker_keeps_the_first_stage_order(toy):
    result = Pipeline(toy, first_stage="bm25").search(toy.queries["q2"], depth=6, k=4)
    assert result.ids == result.first_stage_ids[:4]


def test_dense_index_is_built_once(toy, reranker, small_bi_encoder, monkeypatch):
    encoder = small_bi_encoder
    calls = []
    original = bi_encoder_module.encode_corpus
    monkeypatch.setattr(bi_encoder_module, "encode_corpus", lambda *a, **k: calls.append(1) or original(*a, **k))
    pipe = Pipeline(toy, first_stage=encoder, reranker=reranker)
    for qid in ("q1", "q3", "q4"):
        result = pipe.search(toy.queries[qid], depth=5, k=2)
        assert any(toy.qrels[qid].get(d, 0) > 0 for d in result.first_stage_ids)
    assert calls == [1]


@pytest.mark.parametrize("first_stage", ["bm25", "dense"])
def test_a_query_set_runs_through_the_same_code_as_one_query(toy, reranker, small_bi_encoder, first_stage):
    pipe = Pipeline(toy, "bm25" if first_stage == "bm25" else small_bi_encoder, reranker)
    run = pipe.run(depth=8, k=12)
    assert list(run) == list(toy.queries) and all(len(ids) == 12 for ids in run.values())
    for qid, text in toy.queries.items():
        result = pipe.search(text, depth=8, k=3)
        assert run[qid][:3] == result.ids and run[qid][8:] == pipe.run(depth=1, k=12)[qid][8:]
    with pytest.raises(ValueError, match="depth=13 must be between 1 and k=12"):
        pipe.run(depth=13, k=12)


@pytest.mark.parametrize("fusion", [None, 0.5])
def test_runs_at_several_depths_are_each_depths_run_from_one_first_stage(toy, reranker, fusion, monkeypatch):
    pipe = Pipeline(toy, "bm25", reranker, fusion=fusion)
    singles = {depth: pipe.run(depth=depth, k=12) for depth in (1, 4, 8)}
    assert singles[1] != singles[8]   # the depth changes the ranking
    searched = []
    search = pipe.first_stage.search
    monkeypatch.setattr(pipe.first_stage, "search", lambda *a, **kw: searched.append(1) or search(*a, **kw))
    assert pipe.runs([1, 4, 8], k=12) == singles and len(searched) == 1
    for depth in (4, 8):   # and each equals one query searched at that depth
        assert singles[depth]["q5"][:depth] == pipe.search(toy.queries["q5"], depth, depth).ids
    with pytest.raises(ValueError, match="depth=13 must be between 1 and k=12"):
        pipe.runs([4, 13], k=12)


def test_bad_input(toy):
    pipe = Pipeline(toy, first_stage="bm25")
    with pytest.raises(ValueError, match="query is empty"):
        pipe.search("  ")
    with pytest.raises(ValueError, match="k=5 must be between 1 and depth=3"):
        pipe.search("aspirin", depth=3, k=5)
    with pytest.raises(ValueError, match="k=100 but the corpus has 16 documents"):
        pipe.search("aspirin", depth=100, k=10)
    with pytest.raises(ValueError, match="unknown first stage 'faiss'"):
        Pipeline(toy, first_stage="faiss")
    with pytest.raises(ValueError, match="score_cache needs a reranker"):
        Pipeline(toy, first_stage="bm25", score_cache=ScoreCache(10))


def test_a_store_or_a_scorer_of_the_wrong_kind_is_refused_when_the_pipeline_is_built(toy):
    """A DenseRetriever searches embeddings: the pipeline used to accept it and fail at its first query."""
    store = DenseRetriever(np.eye(len(toy.corpus), dtype=np.float32), list(toy.corpus))
    with pytest.raises(TypeError, match="searches embeddings, not texts.*DenseSearcher"):
        Pipeline(toy, first_stage=store)
    with pytest.raises(TypeError, match="must score texts"):
        Pipeline(toy, first_stage="bm25", reranker=BM25(["a b"], ["d"]))


def test_fusion_interpolates_the_two_stages(toy, reranker):
    from xencoder_lab.pipeline import fuse

    first = {"a": 12.0, "b": 4.0, "c": 8.0}
    second = {"a": -2.0, "b": 6.0, "c": 0.0}
    fused = fuse(first, second, weight=0.3)  # by hand: n1 = (1, 0, 0.5), n2 = (0, 1, 0.25)
    assert fused == pytest.approx({"a": 0.7, "b": 0.3, "c": 0.3 * 0.25 + 0.7 * 0.5})
    assert fuse(first, {"a": 1.0, "b": 1.0, "c": 1.0}, weight=0.5)["a"] == pytest.approx(0.5)  # a flat stage adds 0
    plain, bm25 = Pipeline(toy, "bm25", reranker), Pipeline(toy, "bm25")
    query = toy.queries["q5"]
    assert Pipeline(toy, "bm25", reranker, fusion=1.0).search(query, 8, 8).ids == plain.search(query, 8, 8).ids
    assert Pipeline(toy, "bm25", reranker, fusion=0.0).search(query, 8, 8).ids == bm25.search(query, 8, 8).ids
    half = Pipeline(toy, "bm25", reranker, fusion=0.5)
    assert half.run(depth=8, k=8)["q5"] == half.search(query, 8, 8).ids  # one path for a query and a query set
    with pytest.raises(ValueError, match="between 0 .* and 1"):
        Pipeline(toy, "bm25", reranker, fusion=1.5)
    with pytest.raises(ValueError, match="fusion needs a reranker"):
        Pipeline(toy, "bm25", fusion=0.5)


def test_score_cache_changes_no_result_and_scores_each_pair_once(toy, reranker, monkeypatch):
    plain, cached = Pipeline(toy, "bm25", reranker), Pipeline(toy, "bm25", reranker, score_cache=ScoreCache(100))
    queries = [toy.queries[q] for q in ("q5", "q1", "q5", "q3", "q1")]
    for query, depth in zip(queries, (5, 8, 8, 6, 8)):  # q5 again with more candidates: only the new ones scored
        expected, got = plain.search(query, depth=depth, k=4), cached.search(query, depth=depth, k=4)
        assert got.ids == expected.ids and got.first_stage_ids == expected.first_stage_ids
        assert got.scores == pytest.approx(expected.scores, abs=1e-4)  # float32 noise: misses padded with others
    assert cached.score_cache.info()["hits"] == 5 + 8 and cached.score_cache.info()["misses"] == 5 + 8 + 3 + 6

    expected, scored, original = plain.search(toy.queries["q3"], depth=7, k=4), [], reranker.score
    monkeypatch.setattr(reranker, "score", lambda query, docs, **kw: scored.append(len(docs)) or original(query, docs))
    assert cached.search(toy.queries["q3"], depth=7, k=4).ids == expected.ids
    assert scored == [1]  # six of the seven pairs were kept from the first time
    monkeypatch.setattr(reranker, "score", lambda *a, **k: pytest.fail("a repeated query was scored again"))
    again = cached.search(toy.queries["q3"], depth=7, k=4)
    assert again.ids == expected.ids and again.scores == pytest.approx(expected.scores, abs=1e-4)
