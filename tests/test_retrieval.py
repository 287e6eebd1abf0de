"""Tests for xencoder_lab.retrieval: exact top-k against numpy, edge cases, save and load."""

import os
import subprocess
import sys

import numpy as np
import pytest

from xencoder_lab import retrieval
from xencoder_lab.retrieval import DenseRetriever


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
