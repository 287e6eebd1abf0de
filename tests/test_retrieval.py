"""Tests for xencoder_lab.retrieval: exact top-k against numpy, edge cases, save and load, approximate indexes."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from xencoder_lab import retrieval
from xencoder_lab.retrieval import DenseRetriever, recall_at


@pytest.fixture()
def corpus():
    rng = np.random.default_rng(0)
    d_emb = rng.standard_normal((50, 8)).astype(np.float32)
    d_emb /= np.linalg.norm(d_emb, axis=1, keepdims=True)
    return d_emb, [f"doc{i}" for i in range(50)]


def test_matches_brute_force_top_k(corpus):
    d_emb, ids = corpus
    q_emb = np.random.default_rng(1).standard_normal((7, 8)).astype(np.float32)
    found, scores = DenseRetriever(d_emb, ids).search(q_emb, k=10)
    all_scores = q_emb @ d_emb.T  # (Q, N)
    top = np.argsort(-all_scores, axis=1)[:, :10]
    assert found == [[ids[i] for i in row] for row in top]
    np.testing.assert_allclose(scores, np.take_along_axis(all_scores, top, axis=1), rtol=1e-5, atol=1e-6)
    assert scores.shape == (7, 10) and scores.dtype == np.float32
    assert (np.diff(scores, axis=1) <= 0).all()  # best first


def test_edge_cases(corpus):
    d_emb, ids = corpus
    retriever = DenseRetriever(d_emb, ids)
    with pytest.raises(ValueError, match="k=51 but the corpus has 50 documents: use 1 <= k <= 50"):
        retriever.search(d_emb[:1], k=51)
    found, scores = retriever.search(np.zeros((0, 8), dtype=np.float32), k=5)
    assert found == [] and scores.shape == (0, 5)
    with pytest.raises(ValueError, match="8-d"):
        retriever.search(np.zeros((1, 4), dtype=np.float32), k=5)
    with pytest.raises(ValueError, match="reshape"):
        retriever.search(d_emb[0], k=5)  # one query, 1-D
    with pytest.raises(ValueError, match="corpus is empty"):
        DenseRetriever(np.zeros((0, 8), dtype=np.float32), [])
    with pytest.raises(ValueError, match="one id per row"):
        DenseRetriever(d_emb, ids[:-1])


def test_save_load_round_trip(corpus, tmp_path):
    d_emb, ids = corpus
    retriever = DenseRetriever(d_emb, ids)
    retriever.save(tmp_path / "index")
    loaded = DenseRetriever.load(tmp_path / "index")
    assert loaded.ids == ids
    np.testing.assert_array_equal(loaded.index.reconstruct_n(0, 50), d_emb)
    q_emb = d_emb[:3] + 0.1
    assert loaded.search(q_emb, k=5)[0] == retriever.search(q_emb, k=5)[0]
    retriever.save(tmp_path / "index")  # the same index again: allowed
    other = DenseRetriever(d_emb[::-1], ids)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        other.save(tmp_path / "index")
    assert DenseRetriever.load(tmp_path / "index").ids == ids  # untouched
    other.save(tmp_path / "index", overwrite=True)
    np.testing.assert_array_equal(DenseRetriever.load(tmp_path / "index").index.reconstruct_n(0, 50), d_emb[::-1])


def test_interrupted_save_is_detected(corpus, tmp_path, monkeypatch):
    d_emb, ids = corpus
    DenseRetriever(d_emb, ids).save(tmp_path)
    real_write = retrieval.atomic_write

    def crash_before_ids(path, write):
        if path.name == "ids.json":
            raise KeyboardInterrupt  # the new index.faiss is written, its ids.json never is
        return real_write(path, write)

    monkeypatch.setattr(retrieval, "atomic_write", crash_before_ids)
    with pytest.raises(KeyboardInterrupt):
        DenseRetriever(d_emb[::-1], ids).save(tmp_path, overwrite=True)
    with pytest.raises(ValueError, match="interrupted save"):
        DenseRetriever.load(tmp_path)


def test_dense_searcher_takes_texts_like_bm25(toy, small_bi_encoder, tmp_path):
    from xencoder_lab.bm25 import BM25
    from xencoder_lab.retrieval import DenseSearcher, run_queries

    searcher = DenseSearcher(small_bi_encoder, toy, cache_root=tmp_path)
    assert len(searcher) == len(toy.corpus) and searcher.index.dim == 384
    run = run_queries(searcher, toy, k=3)
    hits = [any(toy.qrels[q].get(doc_id, 0) > 0 for doc_id in top) for q, top in run.items()]
    assert all(hits), run
    bm25 = BM25([toy.corpus[d]["text"] for d in toy.corpus], list(toy.corpus))
    for first_stage in (searcher, bm25):  # one interface: texts in, (ids, scores) out
        ids, scores = first_stage.search(["aspirin and heart attacks"], k=4)
        assert len(ids) == 1 and len(ids[0]) == 4 and scores.shape == (1, 4)
    with pytest.raises(TypeError, match="list of queries"):
        searcher.search("aspirin", k=2)


def test_search_leaves_torch_threads_alone():
    # FAISS and torch share one OpenMP runtime: a retriever must not leave torch on FAISS's single thread.
    # A fresh process, torch imported first (as in a notebook), two threads asked for.
    code = (
        "import torch, numpy as np; from xencoder_lab.retrieval import DenseRetriever; "
        "before = torch.get_num_threads(); r = DenseRetriever(np.eye(4, dtype=np.float32), list('abcd')); "
        "r.search(np.eye(4, dtype=np.float32)[:1], k=2); print(before, torch.get_num_threads())"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["2", "2"]


@pytest.fixture(scope="module")
def larger():
    """3,000 unit vectors in 32-d around 30 topics (as embeddings cluster), 40 queries, the exact top 10 of each."""
    rng = np.random.default_rng(0)
    topics = rng.standard_normal((30, 32))
    d_emb = (topics[rng.integers(0, 30, 3000)] + rng.standard_normal((3000, 32))).astype(np.float32)
    d_emb /= np.linalg.norm(d_emb, axis=1, keepdims=True)
    q_emb = (topics[rng.integers(0, 30, 40)] + rng.standard_normal((40, 32))).astype(np.float32)
    ids = [f"doc{i}" for i in range(3000)]
    exact, _ = DenseRetriever(d_emb, ids).search(q_emb, k=10)
    return d_emb, ids, q_emb, exact


@pytest.mark.parametrize("key, knob", [("HNSW32", {"efSearch": 256}), ("IVF16,Flat", {"nprobe": 12})])
def test_approximate_index_finds_exact_top_10(larger, key, knob):
    d_emb, ids, q_emb, exact = larger
    retriever = DenseRetriever(d_emb, ids, index=key)
    assert retriever.kind == key and len(retriever) == 3000
    found, scores = retriever.set_search(**knob).search(q_emb, k=10)
    assert retriever.search_params == knob
    assert recall_at(found, exact, k=10) >= 0.99
    assert scores.shape == (40, 10) and (np.diff(scores, axis=1) <= 1e-6).all()
    if "nprobe" in knob:  # one list of 16: misses some of the exact top 10
        assert recall_at(retriever.set_search(nprobe=1).search(q_emb, k=10)[0], exact) < 0.9
    with pytest.raises(ValueError, match="does not apply"):
        retriever.set_search(nprobe=4) if "efSearch" in knob else retriever.set_search(efSearch=4)


def test_pq_is_smaller_than_flat(larger):
    d_emb, ids, q_emb, exact = larger
    flat, pq = DenseRetriever(d_emb, ids), DenseRetriever(d_emb, ids, index="IVF8,PQ8")
    assert flat.bytes_per_vector() >= 4 * 32  # 32 floats a vector
    assert pq.bytes_per_vector() < flat.bytes_per_vector() / 4  # 8 bytes of code + 8 of id, + centroids
    found = pq.set_search(nprobe=8).search(q_emb, k=10)[0]
    assert recall_at(found, exact) > 0.5  # lossy (8 bytes for 32 floats), yet far from chance (10 / 3000)


@pytest.mark.parametrize("key, knob", [("HNSW32", {"efSearch": 48}), ("IVF16,PQ8", {"nprobe": 3})])
def test_save_load_approximate_index(larger, tmp_path, key, knob):
    d_emb, ids, q_emb, _ = larger
    retriever = DenseRetriever(d_emb, ids, index=key).set_search(**knob)
    retriever.save(tmp_path)
    loaded = DenseRetriever.load(tmp_path)
    assert loaded.kind == key and loaded.ids == ids and loaded.search_params == knob
    (found, scores), (found2, scores2) = retriever.search(q_emb, k=10), loaded.search(q_emb, k=10)
    assert found2 == found
    np.testing.assert_array_equal(scores2, scores)


def test_index_too_small_to_train(corpus):
    d_emb, ids = corpus  # 50 vectors
    with pytest.raises(ValueError, match="'IVF64,Flat' needs at least 64 vectors to train but got 50.*'HNSW32'"):
        DenseRetriever(d_emb, ids, index="IVF64,Flat")
    with pytest.raises(ValueError, match="needs at least 256 vectors"):  # a PQ sub-quantizer has 256 centroids
        DenseRetriever(d_emb, ids, index="IVF4,PQ4")
    with pytest.raises(ValueError, match="needs at least 8 vectors to train but got 5"):
        DenseRetriever(d_emb, ids, index="IVF8,Flat", train_size=5)
    assert len(DenseRetriever(d_emb, ids, index="IVF8,Flat", train_size=20)) == 50  # trained on 20, holds all


def test_ivf_can_find_fewer_than_k(corpus):
    d_emb, ids = corpus
    retriever = DenseRetriever(d_emb, ids, index="IVF8,Flat").set_search(nprobe=1)
    found, scores = retriever.search(d_emb[:4], k=50)  # one list of 8 holds about 6 of the 50
    assert all(0 < len(row) < 50 for row in found) and all(set(row) <= set(ids) for row in found)
    assert [np.isinf(s).sum() for s in scores] == [50 - len(row) for row in found]


def test_recall_at():
    exact = [["a", "b", "c"], ["d", "e", "f"]]
    assert recall_at(exact, exact, k=3) == 1.0
    assert recall_at([["c", "b", "a"], ["f", "x", "y"]], exact, k=3) == pytest.approx((3 / 3 + 1 / 3) / 2)
    assert recall_at([["a", "z"], []], exact, k=1) == 0.5  # only the first of each counts; an empty result finds none
    with pytest.raises(ValueError, match="one per query"):
        recall_at(exact[:1], exact)
    with pytest.raises(ValueError, match="at least k=4"):
        recall_at(exact, exact, k=4)


def test_too_few_training_rows_are_said_once(capfd):
    """FAISS prints a line per short k-means run (the IVF lists, then every PQ codebook); the retriever says it
    once, as a warning that names the index, and FAISS's own lines do not reach the output."""
    x = np.random.default_rng(0).standard_normal((600, 16)).astype("float32")
    with pytest.warns(UserWarning, match=r"'IVF16,PQ4': k-means on 600 vectors for 256 centroids") as said:
        DenseRetriever(x, [str(i) for i in range(600)], index="IVF16,PQ4")
    assert len(said) == 1
    assert "WARNING clustering" not in capfd.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough rows: nothing to say
        DenseRetriever(np.tile(x, (20, 1)), [str(i) for i in range(12_000)], index="IVF16,Flat")
