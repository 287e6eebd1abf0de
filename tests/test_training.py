"""Tests for xencoder_lab.training: the no-duplicates sampler, a tiny training run, crash-safe snapshots, label-free
corpus queries."""

import numpy as np
import pytest
import torch

from xencoder_lab import training
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.data import TOY_PATH, document_text, load_beir
from xencoder_lab.losses import in_batch_negatives_loss
from xencoder_lab.training import (
    NoDuplicatesBatchSampler,
    train_bi_encoder,
    train_query_tower,
    training_pairs,
)


@pytest.fixture(scope="module")
def model(small_bi_encoder):
    return small_bi_encoder


@pytest.fixture(scope="module")
def pairs(toy):
    return training_pairs(toy)


def test_training_pairs(pairs):
    assert len(pairs) == 10 and pairs[0][0] == "Vitamin D supplements improve bone density in the elderly."
    assert pairs[0][1].startswith("Vitamin D and bone density.")


def test_sampler_has_no_duplicates_and_covers_all_rows():
    rng = np.random.default_rng(0)  # 60 pairs over 10 queries and 15 documents: many collisions
    rows = [(f"q{rng.integers(10)}", f"d{rng.integers(15)}") for _ in range(60)]
    sampler = NoDuplicatesBatchSampler(rows, 4, seed=3)
    for epoch in (list(sampler) for _ in range(3)):
        assert sorted(i for batch in epoch for i in batch) == list(range(60))
        for batch in epoch:
            texts = [text for i in batch for text in rows[i]]
            assert len(texts) == len(set(texts)) and 1 <= len(batch) <= 4
        assert sum(len(batch) == 4 for batch in epoch) >= 10  # most batches full


def test_sampler_is_deterministic():
    rows = [(f"q{i}", f"d{i % 7}", f"n{i % 5}") for i in range(40)]
    a, b, c = (NoDuplicatesBatchSampler(rows, 8, seed=s) for s in (1, 1, 2))
    first_a, first_b = list(a), list(b)
    assert first_a == first_b and list(a) == list(b)  # same seed: same batches, pass after pass
    assert list(a) != first_a  # each pass reshuffles
    assert list(c) != first_a  # another seed, other batches


def fixed_batch_loss(model, pairs):
    model.eval()
    with torch.no_grad():
        q_emb = model(model.tokenize([q for q, _ in pairs]), "query")  # (B, D)
        d_emb = model(model.tokenize([d for _, d in pairs]), "document")  # (B, D)
        return in_batch_negatives_loss(q_emb, d_emb, temperature=0.05).item()


def test_tiny_training_run_lowers_the_loss(pairs):
    model = BiEncoder(max_length=32)  # trained here, so not the shared fixture
    queries, docs = [pairs[i][0] for i in (0, 2, 4, 5)], [pairs[i][1] for i in (0, 2, 4, 5)]
    batch = list(zip(queries, docs[1:] + docs[:1]))  # deliberately mismatched: a high loss to bring down
    before = fixed_batch_loss(model, batch)
    log = train_bi_encoder(
        model, batch, steps=6, batch_size=4, lr=1e-4, warmup=1, log_every=3, seed=0, show_progress=False,
    )
    assert [entry["step"] for entry in log] == [3, 6] and set(log[0]) == {"step", "loss", "seconds"}
    assert fixed_batch_loss(model, batch) < before


def test_hard_negatives_join_the_batch(toy, pairs, monkeypatch):
    model = BiEncoder(max_length=16)
    shapes = []
    def loss(scores, temperature):
        shapes.append(tuple(scores.shape))
        return scores.mean()

    monkeypatch.setattr(training, "scores_loss", loss)
    four = [pairs[i] for i in (0, 2, 4, 5)]  # four different queries and documents
    negatives = [document_text(toy.corpus[doc_id]) for doc_id in ("d16", "d10", "d03", "d09")]
    train_bi_encoder(model, four, steps=2, batch_size=4, hard_negatives=negatives, show_progress=False)
    assert shapes == [(4, 8), (4, 8)]  # each query against 4 positives, then 4 hard negatives
    with pytest.raises(ValueError):
        train_bi_encoder(model, four, steps=1, hard_negatives=negatives[:3], show_progress=False)


def test_query_tower_training_leaves_the_documents_where_they_are(toy, pairs):
    model = BiEncoder(max_length=32, shared=False)
    ids = list(toy.corpus)
    docs = [document_text(toy.corpus[d]) for d in ids]
    d_emb = model.encode_documents(docs, show_progress=False)  # (N, D)
    judged = [(q, d) for q, judged in toy.qrels.items() for d, g in judged.items() if g > 0]
    queries = [toy.queries[q] for q, _ in judged]
    wrong = [ids.index(d) for _, d in judged[1:] + judged[:1]]  # mismatched positives: a high loss to bring down
    rows = np.arange(len(wrong))
    before = (model.encode_queries(queries, show_progress=False) @ d_emb.T)[rows, wrong]  # (P,)
    log = train_query_tower(model, queries, wrong, d_emb, steps=6, batch_size=4, lr=1e-4, warmup=1, log_every=3,
                            show_progress=False)
    assert [entry["step"] for entry in log] == [3, 6]
    after = (model.encode_queries(queries, show_progress=False) @ d_emb.T)[rows, wrong]  # (P,)
    assert after.mean() > before.mean()  # the queries moved towards their (assigned) documents
    np.testing.assert_array_equal(model.encode_documents(docs, show_progress=False), d_emb)  # the index stays valid
    with pytest.raises(ValueError, match="shared=False"):
        train_query_tower(BiEncoder(max_length=16), queries, wrong, d_emb, steps=1, show_progress=False)


def test_learning_rate_schedule():
    factors = [training.lr_factor(s, warmup=3, steps=10) for s in range(10)]
    assert factors[:4] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])  # up over 3 steps, then down from step 3
    assert all(a > b for a, b in zip(factors[3:], factors[4:])) and factors[-1] > 0


def test_corpus_queries_add_one_label_free_pair_per_document():
    toy = load_beir("toy", path=TOY_PATH)
    titles = training.corpus_queries(toy, "title")
    assert [doc_id for _, doc_id in titles] == [d for d in toy.corpus if toy.corpus[d]["title"].strip()]
    assert all(query == toy.corpus[doc_id]["title"] for query, doc_id in titles)
    for query, doc_id in training.corpus_queries(toy, "last sentence"):
        assert toy.corpus[doc_id]["text"].rstrip().endswith(query) and len(query.split()) >= 6
    with pytest.raises(ValueError, match="use \"title\" or \"last sentence\""):
        training.corpus_queries(toy, "first sentence")
