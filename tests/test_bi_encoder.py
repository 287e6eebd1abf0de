"""Tests for xencoder_lab.bi_encoder: the reference embeddings, order, towers, poolings and the corpus cache."""

import copy
import os
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from xencoder_lab.bi_encoder import POOLINGS, BiEncoder, encode_corpus, pool
from xencoder_lab.checkpoints import load_model, save_model
from xencoder_lab.data import Dataset, document_text, load_beir
from xencoder_lab.models import resolve_model

SCIFACT = Path(os.environ.get("XLAB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="module")
def model(bi_encoder):
    return bi_encoder


@pytest.fixture(scope="module")
def texts(toy):
    texts = [
        "hi",
        "Aspirin prevents heart attacks.",
        "Does vitamin D improve bone density in older adults? A randomised trial says no.",
        "ÄÖÜ café naïve — 温度 and emoji 🙂 with numbers 3.14159 and 42%",
        "word " * 400,  # far beyond 256 tokens: truncated
        *(document_text(doc) for doc in islice(toy.corpus.values(), 8)),
    ]
    if (SCIFACT / "scifact" / "corpus.jsonl").exists():
        scifact = load_beir("scifact", "test", path=SCIFACT)
        texts += [document_text(doc) for doc in islice(scifact.corpus.values(), 7)]  # long abstracts
    return texts


def test_matches_sentence_transformers(model, texts):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(resolve_model(), device="cpu").encode(texts, normalize_embeddings=True)
    ours = model.encode_documents(texts)
    assert ours.shape == reference.shape == (len(texts), 384) and ours.dtype == np.float32
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_order_restored_after_length_sorting(small_bi_encoder, texts):
    model = small_bi_encoder  # short: this test encodes every text three times
    batched = model.encode_queries(texts, batch_size=4)
    one_by_one = np.concatenate([model.encode_queries([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    reversed_ = model.encode_queries(texts[::-1], batch_size=4)
    np.testing.assert_allclose(reversed_[::-1], batched, atol=1e-5)


def test_shared_and_separate_towers(model, texts, tmp_path):
    separate = BiEncoder(shared=False)
    n_shared = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in separate.parameters()) == 2 * n_shared
    assert separate.doc_tower is not separate.query_tower and model.doc_tower is model.query_tower
    np.testing.assert_allclose(separate.encode_documents(texts[:5]), model.encode_documents(texts[:5]), atol=1e-6)
    np.testing.assert_allclose(separate.encode_queries(texts[:5]), model.encode_documents(texts[:5]), atol=1e-6)
    with torch.no_grad():
        separate.doc_tower.encoder.layer[-1].output.LayerNorm.bias += 0.05  # the towers now differ
    save_model(separate, tmp_path / "separate")
    loaded = load_model(tmp_path / "separate")
    for encode in ("encode_queries", "encode_documents"):
        expected = getattr(separate, encode)(texts[:5])
        np.testing.assert_allclose(getattr(loaded, encode)(texts[:5]), expected, atol=1e-6)
    assert not np.allclose(loaded.encode_documents(texts[:5]), loaded.encode_queries(texts[:5]), atol=1e-3)


def test_poolings_differ_from_one_forward_pass(model, texts):
    batch = model.tokenize(texts[:6])
    with torch.inference_mode():
        out = model.query_tower(**batch)
    embs = {how: pool(out.last_hidden_state, batch["attention_mask"], out.pooler_output, how) for how in POOLINGS}
    assert all(e.shape == (6, 384) for e in embs.values())
    for a, b in [("cls", "pooler"), ("cls", "mean"), ("pooler", "mean")]:
        assert torch.cosine_similarity(embs[a], embs[b]).max() < 0.99, (a, b)
    cls_model = BiEncoder(pooling="cls")
    expected = torch.nn.functional.normalize(embs["cls"], dim=-1).numpy()
    np.testing.assert_allclose(cls_model.encode_queries(texts[:6], batch_size=6), expected, atol=1e-5)


def test_bad_inputs(model):
    with pytest.raises(ValueError, match="query 1 is empty"):
        model.encode_queries(["fine", "  "])
    with pytest.raises(TypeError, match="list of texts"):
        model.encode_queries("one string")
    with pytest.raises(ValueError, match="unknown pooling"):
        BiEncoder(pooling="max")
    assert model.encode_queries([]).shape == (0, 384)


def test_corpus_cache_hit_and_miss(model, toy, tmp_path, monkeypatch):
    monkeypatch.setenv("XLAB_CACHE", str(tmp_path))
    model = copy.deepcopy(model)  # its weights are changed below
    calls = []
    encode = model.encode_documents
    monkeypatch.setattr(model, "encode_documents", lambda *a, **k: calls.append(1) or encode(*a, **k))
    first = encode_corpus(model, toy)
    assert first.shape == (16, 384) and len(calls) == 1
    np.testing.assert_array_equal(encode_corpus(model, toy), first)
    assert len(calls) == 1  # hit
    with torch.no_grad():
        model.doc_tower.pooler.dense.bias += 1.0  # a different model: a different fingerprint
    encode_corpus(model, toy)
    assert len(calls) == 2  # miss


def test_empty_documents_are_embedded_as_sentence_transformers_does(model, toy):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(resolve_model(), device="cpu")
    reference = st.encode(["", "a title only."], normalize_embeddings=True)
    np.testing.assert_allclose(model.encode_documents(["", "a title only."]), reference, atol=1e-5)
    corpus = {**toy.corpus, "blank": {"title": "", "text": ""}, "title-only": {"title": "Aspirin", "text": ""}}
    ds = Dataset("toy-with-blanks", "test", corpus, toy.queries, toy.qrels)
    d_emb = encode_corpus(model, ds)  # embedded; the rankings put it last and warn (test_empty_documents)
    assert d_emb.shape == (18, 384) and np.isfinite(d_emb).all()
