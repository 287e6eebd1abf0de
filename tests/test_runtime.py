"""Models run by ONNX Runtime: the same scores in float32, close ones in int8, never mixed in a cache."""

import copy
import logging

import numpy as np
import pytest
import torch

from xencoder_lab import runtime
from xencoder_lab.bi_encoder import BiEncoder, corpus_cache_parts, encode_corpus
from xencoder_lab.cross_encoder import pair_cache_parts
from xencoder_lab.data import document_text
from xencoder_lab.models import backend_parts

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def toy_pairs(toy):
    docs = [document_text(doc) for doc in toy.corpus.values()]
    return [(q, d) for q in toy.queries.values() for d in docs]


def test_cross_encoder_scores_the_same_in_float32_and_close_in_int8(warm, toy_pairs, tmp_path, caplog):
    queries, docs = [q for q, _ in toy_pairs], [d for _, d in toy_pairs]
    reference = warm.score(queries, docs)  # (P,)
    float32 = runtime.accelerate(warm, "float32", tmp_path / "f32").score(queries, docs)
    with caplog.at_level(logging.WARNING):
        int8_model = runtime.accelerate(warm, "int8", tmp_path / "i8")
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]   # advice for static quantisation
    int8 = int8_model.score(queries, docs)
    assert np.abs(float32 - reference).max() < 1e-3
    assert 0 < np.abs(int8 - reference).max() < 2.0   # int8 rounds: close, not equal
    assert np.corrcoef(int8, reference)[0, 1] > 0.98
    # the word embeddings stay float32; the matrices quantised to int8 take about a quarter of their bytes
    embeddings = warm.encoder.embeddings.word_embeddings.weight.numel() * 4
    sizes = {name: (tmp_path / name / f"cross_encoder{suffix}.onnx").stat().st_size - embeddings
             for name, suffix in (("f32", ""), ("i8", ".int8"))}
    assert sizes["i8"] < 0.35 * sizes["f32"]


def test_bi_encoder_towers_embed_as_in_pytorch(small_bi_encoder, tmp_path):
    two = BiEncoder(max_length=32, shared=False)
    with torch.no_grad():
        two.doc_tower.encoder.layer[-1].output.dense.weight.mul_(1.5)   # documents now embed differently
    texts = ["Aspirin prevents heart attacks.", "Measles vaccine works in children.", "a"]
    fast = runtime.accelerate(two, "float32", tmp_path)
    np.testing.assert_allclose(fast.encode_documents(texts), two.encode_documents(texts), atol=1e-5)
    np.testing.assert_allclose(fast.encode_queries(texts), two.encode_queries(texts), atol=1e-5)
    assert np.abs(two.encode_documents(texts) - two.encode_queries(texts)).max() > 1e-3
    int8 = runtime.accelerate(small_bi_encoder, "int8", tmp_path / "i8").encode_documents(texts)
    cosines = (int8 * small_bi_encoder.encode_documents(texts)).sum(1)
    assert cosines.min() > 0.98


def test_an_accelerated_model_never_shares_cache_entries(toy, small_bi_encoder, warm, tmp_path, monkeypatch):
    fast = runtime.accelerate(small_bi_encoder, "int8", tmp_path / "onnx")
    assert corpus_cache_parts(fast, toy) != corpus_cache_parts(small_bi_encoder, toy)
    assert pair_cache_parts(runtime.accelerate(warm, "int8", tmp_path / "ce")) != pair_cache_parts(warm)
    reference = encode_corpus(small_bi_encoder, toy, cache_root=tmp_path / "cache")
    served = encode_corpus(fast, toy, cache_root=tmp_path / "cache")   # computed anew, not read back
    assert 0 < np.abs(served - reference).max()
    assert "backend" not in pair_cache_parts(warm)   # PyTorch results keep the keys they always had
    assert backend_parts(fast)["graph"] == "eager attention, one input per run"   # another form: other keys
    assert backend_parts(runtime.accelerate(warm, "float32", tmp_path / "f32"))["graph"] == "eager attention"


def test_an_int8_copy_gives_each_input_its_own_result_whatever_its_batch(warm, toy_pairs, small_bi_encoder,
                                                                        tmp_path):
    """One activation scale per batch would make a pair's int8 logit depend on its batch mates; int8 runs each
    input alone, so a pair scores the same in any batch, as it does alone, to the bit."""
    queries, docs = [q for q, _ in toy_pairs], [d for _, d in toy_pairs]
    int8 = runtime.accelerate(warm, "int8", tmp_path / "ce")
    batched = int8.score(queries, docs, batch_size=32)                                        # (P,)
    alone = np.array([int8.score([q], [d])[0] for q, d in toy_pairs])                        # (P,)
    np.testing.assert_array_equal(batched, alone)
    np.testing.assert_array_equal(int8.score(queries[::-1], docs[::-1], batch_size=3), batched[::-1])
    texts = [d for _, d in toy_pairs[:8]] + ["a"]
    encoder = runtime.accelerate(small_bi_encoder, "int8", tmp_path / "bi")
    np.testing.assert_array_equal(encoder.encode_documents(texts, batch_size=4),
                                  np.concatenate([encoder.encode_documents([t]) for t in texts]))
    # the whole batch in one run, as float32 does, is what made the difference
    session = runtime.OnnxForward(tmp_path / "ce" / "cross_encoder.int8.onnx")
    batch = int8.tokenize(queries, docs)
    assert np.abs(session(batch).numpy() - batched).max() > 0


def test_export_leaves_the_model_as_it_was_and_sessions_do_not_spin(small_bi_encoder, tmp_path):
    before = small_bi_encoder.query_tower.config._attn_implementation
    fast = runtime.accelerate(small_bi_encoder, "float32", tmp_path)
    assert small_bi_encoder.query_tower.config._attn_implementation == before   # the export used a copy
    session = runtime.OnnxForward(tmp_path / "query.onnx").session
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert fast.encode_queries(["a"]).shape == small_bi_encoder.encode_queries(["a"]).shape


def test_bad_calls_say_what_to_do(warm, tmp_path):
    with pytest.raises(ValueError, match="unknown precision"):
        runtime.accelerate(warm, "int4")
    with pytest.raises(ValueError, match="already runs in onnxruntime"):
        runtime.accelerate(runtime.accelerate(warm, "float32", tmp_path), "int8")
    with pytest.raises(TypeError, match="CrossEncoder or a BiEncoder"):
        runtime.accelerate(torch.nn.Linear(2, 1))
    assert copy.copy(warm).forward.__func__ is type(warm).forward   # the original is untouched
