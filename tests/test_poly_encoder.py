import copy

import numpy as np
import pytest
import torch

from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.data import document_text
from xencoder_lab.models import add_lora
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.poly_encoder import PolyEncoder, code_attention, poly_scores
from xencoder_lab.training import train_bi_encoder, training_pairs

QUERIES = ["Does aspirin prevent heart attacks?", "Is vitamin D linked to tuberculosis?"]
DOCS = ["Low-dose aspirin cut second heart attacks.", "Low serum vitamin D was linked to active tuberculosis.",
        "Measles vaccine works."]


@pytest.fixture(scope="module")
def poly():
    return PolyEncoder(codes=16, max_length=32)


def test_code_attention_ignores_padding():
    torch.manual_seed(0)
    hidden, codes = torch.randn(2, 5, 8), torch.randn(3, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    changed = hidden.clone()
    changed[0, 3:] = 100.0  # padding of the first text
    assert torch.allclose(code_attention(hidden, mask, codes), code_attention(changed, mask, codes))
    with pytest.raises(ValueError, match="codes"):
        code_attention(hidden, mask, torch.randn(3, 7))


def test_poly_scores_is_the_document_attending_over_the_views():
    torch.manual_seed(0)
    q_vecs, d_emb = torch.randn(2, 4, 8), torch.randn(3, 8)
    scores = poly_scores(q_vecs, d_emb, scale=5.0)
    for q in range(2):
        for n in range(3):
            w = (5.0 * (q_vecs[q] @ d_emb[n])).softmax(0)  # (m,)
            assert scores[q, n] == pytest.approx(float(d_emb[n] @ (w[:, None] * q_vecs[q]).sum(0)), rel=1e-5)


def test_at_step_0_the_poly_encoder_is_the_bi_encoder(poly, small_bi_encoder):
    expected = small_bi_encoder.encode_queries(QUERIES) @ small_bi_encoder.encode_documents(DOCS).T  # (2, 3)
    got = poly.score(poly.encode_queries(QUERIES), poly.encode_documents(DOCS))
    assert np.abs(got - expected).max() < 1e-3
    mean = PolyEncoder(codes=0, max_length=32)  # no codes: mean pooling, exactly
    assert np.allclose(mean.score(mean.encode_queries(QUERIES), mean.encode_documents(DOCS)), expected, atol=1e-5)
    with pytest.raises(ValueError, match="codes"):
        PolyEncoder(codes=-1)


def test_training_moves_the_codes_and_lowers_the_loss(poly, toy):
    model = copy.deepcopy(poly)
    lora = add_lora(model.query_tower, rank=4, train_top=1)
    assert all(".lora_" in name for name in lora)
    before = model.codes.detach().clone()
    pairs = training_pairs(toy)
    groups = [{"params": [model.query_tower.get_parameter(n) for n in lora], "lr": 1e-3},
              {"params": [model.codes], "lr": 1e-2}]
    log = train_bi_encoder(model, pairs, steps=6, batch_size=4, warmup=1, log_every=3, show_progress=False,
                           param_groups=groups)
    assert log[-1]["loss"] < log[0]["loss"]
    assert not torch.equal(before, model.codes)
    views = model.encode_queries(QUERIES)  # trained codes: the m views now differ
    assert np.abs(views[0] - views[0, :1]).max() > 1e-3


def test_searcher_ranks_by_poly_scores_and_serves_a_pipeline(poly, toy):
    searcher = poly.searcher(toy)
    ids, scores = searcher.search(QUERIES, k=3)
    full = poly.score(poly.encode_queries(QUERIES), searcher.d_emb)  # (2, N)
    assert [doc for doc in ids[0]] == [searcher.ids[i] for i in np.argsort(-full[0], kind="stable")[:3]]
    assert np.allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :3], atol=1e-6)
    with pytest.raises(ValueError, match="k="):
        searcher.search(QUERIES, k=len(toy.corpus) + 1)
    result = Pipeline(toy, first_stage=poly).search(QUERIES[0], depth=5, k=3)
    assert result.ids == ids[0][:3]
    assert isinstance(poly, BiEncoder) and document_text(toy.corpus[result.ids[0]])
