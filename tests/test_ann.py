"""Approximate indexes measured against exact search, on a few hundred random unit vectors."""

import numpy as np
import pytest

from xencoder_lab.ann import measure_indexes, nlist


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    d_emb = rng.normal(size=(500, 32)).astype(np.float32)  # (N, D)
    q_emb = rng.normal(size=(20, 32)).astype(np.float32)   # (Q, D)
    return d_emb / np.linalg.norm(d_emb, axis=1, keepdims=True), q_emb / np.linalg.norm(q_emb, axis=1, keepdims=True)


def test_flat_is_exact_and_the_baseline(vectors):
    plans = [("HNSW32", [{"efSearch": 16}, {"efSearch": 64}]), ("Flat", None), ("IVF8,Flat", [{"nprobe": 2}])]
    rows = measure_indexes(*vectors, plans, warmup=1)
    assert list(rows) == ["HNSW32 efSearch=16", "HNSW32 efSearch=64", "Flat", "IVF8,Flat nprobe=2"]  # plans' order
    assert rows["Flat"]["recall@10"] == 1.0 and rows["Flat"]["speed-up"] == 1.0
    assert set(rows["Flat"]) == {"build s", "bytes/vector", "ms p50", "ms p95", "recall@10", "speed-up"}
    for row in rows.values():
        assert 0 <= row["recall@10"] <= 1 and row["speed-up"] > 0 and row["ms p95"] >= row["ms p50"] > 0
    assert rows["Flat"]["bytes/vector"] == 32 * 4
    assert rows["HNSW32 efSearch=16"]["build s"] == rows["HNSW32 efSearch=64"]["build s"]  # one build per index


def test_recall_key_follows_k(vectors):
    rows = measure_indexes(*vectors, [("Flat", None)], k=5, warmup=0)
    assert rows["Flat"]["recall@5"] == 1.0


def test_bad_plans_and_queries_are_refused(vectors):
    d_emb, q_emb = vectors
    with pytest.raises(ValueError, match="Flat"):
        measure_indexes(d_emb, q_emb, [("HNSW32", [{"efSearch": 16}])])
    with pytest.raises(ValueError, match="at least one query"):
        measure_indexes(d_emb, q_emb[:0], [("Flat", None)])
    with pytest.raises(ValueError, match="nprobe does not apply"):
        measure_indexes(d_emb, q_emb, [("Flat", None), ("HNSW32", [{"nprobe": 4}])])


def test_nlist_is_a_power_of_two_near_4_sqrt_n():
    assert [nlist(n) for n in (5183, 200_000, 1_000_000)] == [256, 2048, 4096]
