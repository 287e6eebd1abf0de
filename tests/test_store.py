"""The store interface: Qdrant (embedded) gives FAISS's results, on disk it keeps what was saved, and its MaxSim
multi-vectors give ColBERT's scores."""

import numpy as np
import pytest
import torch

from xencoder_lab import corpus_embeddings, metrics
from xencoder_lab.bi_encoder import BiEncoder, encode_corpus
from xencoder_lab.colbert import ColBERT, ColbertIndex
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.retrieval import DenseRetriever, DenseSearcher, make_store
from xencoder_lab.store import QdrantStore


def _same_rankings(ids_a, scores_a, ids_b, scores_b, tol=1e-5):
    """Equal ids at every rank, except where two documents' scores tie within ``tol`` (either order is right)."""
    np.testing.assert_allclose(scores_a, scores_b, atol=tol)
    for row_a, row_b, s in zip(ids_a, ids_b, scores_a):
        for r, (a, b) in enumerate(zip(row_a, row_b)):
            if a != b:
                near = [r2 for r2 in range(len(s)) if abs(s[r2] - s[r]) <= tol]
                assert {row_a[r2] for r2 in near} == {row_b[r2] for r2 in near}, (r, a, b)


def test_qdrant_gives_faiss_results_on_scifact(scifact_test):
    """All 300 test claims, top 100 of the 5,183 abstracts, the shipped zero-shot embeddings: same ids, same
    scores, and so the same nDCG@10."""
    model = BiEncoder()
    corpus_embeddings.install(model, scifact_test)
    d_emb = encode_corpus(model, scifact_test)  # (N, D), from the cache
    q_emb = model.encode_queries(list(scifact_test.queries.values()), show_progress=False)  # (300, D)
    ids = list(scifact_test.corpus)
    faiss_ids, faiss_scores = make_store(d_emb, ids).search(q_emb, k=100)
    qdrant = make_store(d_emb, ids, where=":memory:")
    assert isinstance(qdrant, QdrantStore) and len(qdrant) == len(ids)
    qdrant_ids, qdrant_scores = qdrant.search(q_emb, k=100)
    _same_rankings(faiss_ids, faiss_scores, qdrant_ids, qdrant_scores)
    ndcg = [metrics.evaluate(dict(zip(scifact_test.queries, run)), scifact_test.qrels, ["ndcg@10"])["ndcg@10"]
            for run in (faiss_ids, qdrant_ids)]
    assert ndcg[0] == pytest.approx(ndcg[1], abs=1e-4)
    assert ndcg[0] == pytest.approx(0.650, abs=0.005)  # the zero-shot figure of notebook 02


def test_pipeline_on_a_vector_database_ranks_as_on_faiss(toy, bi_encoder):
    in_process = Pipeline(toy, bi_encoder).run(depth=10, k=10)
    database = Pipeline(toy, DenseSearcher(bi_encoder, toy, where=":memory:")).run(depth=10, k=10)
    assert database == in_process


def test_on_disk_collection_is_kept_and_never_overwritten(tmp_path):
    rng = np.random.default_rng(0)
    d_emb = rng.standard_normal((50, 8)).astype(np.float32)
    ids = [f"d{i}" for i in range(50)]
    folder = tmp_path / "qdrant"
    store = QdrantStore(d_emb, ids, location=folder)
    expected = store.search(d_emb[:3], k=5)
    store.client.close()  # embedded on disk, one client at a time holds the folder
    reopened = QdrantStore(None, location=folder)  # a later session opens what was saved
    assert reopened.search(d_emb[:3], k=5)[0] == expected[0]
    reopened.client.close()
    again = QdrantStore(d_emb, ids, location=folder)  # the same documents: the saved collection is used
    assert len(again) == 50
    again.client.close()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        QdrantStore(d_emb[:10], ids[:10], location=folder)
    replaced = QdrantStore(d_emb[:10], ids[:10], location=folder, overwrite=True)
    assert len(replaced) == 10


def test_multivector_maxsim_gives_colberts_scores(toy):
    """Each toy document as one point holding its token vectors: Qdrant's MaxSim gives the package's scores."""
    torch.manual_seed(0)
    model = ColBERT()
    index = ColbertIndex(model, toy)
    docs = [index.vectors[index.offsets[i]: index.offsets[i + 1]].astype(np.float32) for i in range(len(index))]
    store = QdrantStore(docs, index.ids, multivector=True)
    Q = model.encode_queries(list(toy.queries.values()), show_progress=False)  # (Q, 32, dim)
    ids, scores = store.search(list(Q), k=len(docs))
    for q, row_ids, row_scores in zip(Q, ids, scores):
        got = dict(zip(row_ids, row_scores))
        np.testing.assert_allclose([got[d] for d in index.ids], index.exhaustive(q), rtol=1e-4)
        assert row_ids == [index.ids[i] for i in np.argsort(-index.exhaustive(q), kind="stable")]


def test_bad_input_is_a_clear_error():
    d_emb = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="one id per document"):
        QdrantStore(d_emb, ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        QdrantStore(np.zeros((0, 3), dtype=np.float32), [])
    with pytest.raises(ValueError, match=r"k=5 but the collection has 3"):
        QdrantStore(d_emb, list("abc")).search(d_emb[:1], k=5)
    with pytest.raises(LookupError, match="no collection"):
        QdrantStore(None, collection="missing")
    assert isinstance(make_store(d_emb, list("abc")), DenseRetriever)


def test_shards_and_replicas_reach_the_collection(monkeypatch):
    """An embedded Qdrant has one shard and no copies; a server splits a collection into ``shards`` and keeps each
    ``replicas`` times: the store hands both to the collection it creates."""
    from xencoder_lab import store

    created = {}
    real_client = store._client

    def recording_client(location):
        client = real_client(location)
        create = client.create_collection

        def create_collection(name, **settings):
            created.update(settings)
            return create(name, **settings)

        client.create_collection = create_collection
        return client

    monkeypatch.setattr(store, "_client", recording_client)
    QdrantStore(np.eye(3, dtype=np.float32), ["a", "b", "c"], shards=3, replicas=2)
    assert (created["shard_number"], created["replication_factor"]) == (3, 2)
