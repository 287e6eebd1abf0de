import copy

import numpy as np
import pytest
import torch

from xencoder_lab.colbert import ColBERT, ColbertIndex, maxsim, pad_documents
from xencoder_lab.data import document_text
from xencoder_lab.models import add_lora, model_fingerprint
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.training import train_bi_encoder, training_pairs

QUERIES = ["Does aspirin prevent heart attacks?", "Is vitamin D linked to tuberculosis?"]
DOCS = ["Low-dose aspirin cut second heart attacks in a large trial of older adults.", "Measles vaccine works."]


@pytest.fixture(scope="module")
def colbert():
    return ColBERT(max_length=64)


def test_maxsim_is_the_sum_of_best_matches_and_ignores_padding():
    torch.manual_seed(0)
    Q = torch.nn.functional.normalize(torch.randn(2, 4, 8), dim=-1)
    D = torch.nn.functional.normalize(torch.randn(3, 6, 8), dim=-1)
    D[1, 4:] = 0.0  # document 1 has 4 real tokens
    expected = torch.tensor([[sum(max(float(Q[b, i] @ D[n, j]) for j in range(6 if n != 1 else 4))
                              for i in range(4)) for n in range(3)] for b in range(2)])
    assert torch.allclose(maxsim(Q, D), expected, atol=1e-5)
    wider = torch.cat([D, torch.zeros(3, 10, 8)], dim=1)  # more padding changes nothing
    assert torch.allclose(maxsim(Q, wider), maxsim(Q, D))
    negative = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[-1.0, 0.0], [0.0, 0.0]]])
    assert maxsim(*negative).item() == -1.0 and maxsim(*negative, mask_with="multiply").item() == 0.0
    with pytest.raises(ValueError, match="mask_with"):
        maxsim(Q, D, mask_with="zero")


def test_markers_augmentation_and_batch_independence(colbert):
    features = colbert.features(QUERIES, "query")
    assert all(len(ids) == colbert.query_length and ids[1] == colbert.markers["query"] for ids in features["input_ids"])
    assert colbert.tokenizer.mask_token_id in features["input_ids"][0]
    Q = colbert.encode_queries(QUERIES)
    assert Q.shape == (2, 32, 128) and np.allclose(np.linalg.norm(Q, axis=-1), 1.0, atol=1e-5)
    plain = copy.deepcopy(colbert)
    plain.augment = False
    Qp = plain.encode_queries(QUERIES)
    real = sum(features["attention_mask"][0])
    assert np.abs(Qp[0, real:]).max() == 0.0  # no augmentation: padding adds nothing
    assert np.allclose(Qp[0, :real], Q[0, :real], atol=1e-5)  # no real token attends to a [MASK]: same vectors
    assert np.linalg.norm(Q[0, real:], axis=-1).min() > 0.99  # the [MASK] outputs: extra query vectors
    vectors, lengths = colbert.encode_documents(DOCS)
    alone, _ = colbert.encode_documents(DOCS[1:])
    assert vectors.dtype == np.float16 and len(vectors) == lengths.sum()
    assert np.abs(vectors[lengths[0]:].astype(np.float32) - alone.astype(np.float32)).max() < 2e-3
    with pytest.raises(ValueError, match="empty"):
        colbert.encode_queries(["  "])


def test_index_search_and_rerank_match_maxsim(colbert, toy, tmp_path):
    exact = ColbertIndex(colbert, toy, cache_root=tmp_path)
    Q = colbert.encode_queries(QUERIES)
    reference = maxsim(torch.from_numpy(Q), pad_documents(exact.vectors, exact.lengths)).numpy()  # (2, N)
    assert np.allclose(exact.exhaustive(Q[0], budget=50 * 32), reference[0], atol=1e-4)  # chunks of a few documents
    assert np.allclose(exact.exhaustive(Q, budget=50 * 64), reference, atol=1e-4)  # both queries, chunk by chunk
    indexed = ColbertIndex(colbert, toy, index="Flat", candidates=64, cache_root=tmp_path)  # from the cache
    assert np.array_equal(indexed.vectors, exact.vectors)
    for index in (exact, indexed):
        ids, scores = index.search(QUERIES, k=3)
        for q in range(2):
            assert ids[q] == [index.ids[i] for i in np.argsort(-reference[q], kind="stable")[:3]]
            assert np.allclose(scores[q], np.sort(reference[q])[::-1][:3], atol=1e-4)
    rows = [3, 0, 5]
    assert np.allclose(exact.rerank(Q[0], rows), reference[0, rows], atol=1e-4)
    first = {"q": [exact.ids[r] for r in rows] + [exact.ids[1]]}
    reranked = exact.rerank_run({"q": QUERIES[0]}, first, depth=3)["q"]
    assert reranked[:3] == [exact.ids[rows[i]] for i in np.argsort(-reference[0, rows], kind="stable")]
    assert reranked[3] == exact.ids[1]  # below the depth: kept in place
    sizes = indexed.bytes_per_document()
    assert sizes["fp16 vectors"] == pytest.approx(sizes["tokens"] * 128 * 2) and sizes["token index"] > 0
    with pytest.raises(ValueError, match="no knob"):
        exact.set_search(nprobe=4)
    index = exact
    with pytest.raises(ValueError, match="k="):
        index.search(QUERIES, k=len(toy.corpus) + 1)
    result = Pipeline(toy, first_stage=colbert).search(QUERIES[0], depth=5, k=2)
    assert len(result.ids) == 2 and document_text(toy.corpus[result.ids[0]])


def test_rerank_run_breaks_ties_in_first_stage_order(colbert, toy, tmp_path, monkeypatch):
    index = ColbertIndex(colbert, toy, cache_root=tmp_path)
    tied = np.array([1.0, 2.0, 1.0, 2.0, -0.0, 0.0], dtype=np.float32)  # MaxSim of the top 6, two ties and 0 = -0
    monkeypatch.setattr(index, "rerank", lambda q, rows, mask_with="-inf": tied[: len(rows)])
    first = {"q": index.ids[:8]}
    reranked = index.rerank_run({"q": QUERIES[0]}, first, depth=6, query_vectors=np.zeros((1, 32, 128)))["q"]
    assert reranked == [first["q"][i] for i in np.argsort(-tied, kind="stable")] + first["q"][6:]
    assert reranked == [first["q"][i] for i in (1, 3, 0, 2, 4, 5, 6, 7)]


def test_training_lowers_the_loss(colbert, toy):
    model = copy.deepcopy(colbert)
    lora = add_lora(model.tower, rank=4, train_top=1)
    before = model.projection.weight.detach().clone()
    groups = [{"params": [model.tower.get_parameter(n) for n in lora], "lr": 1e-3},
              {"params": [model.projection.weight], "lr": 1e-3}]
    pairs = training_pairs(toy)
    pairs = list(zip([q for q, _ in pairs], [d for _, d in pairs][1:] + [pairs[0][1]]))  # wrong pairs: high loss
    log = train_bi_encoder(model, pairs, steps=6, batch_size=4, warmup=1, temperature=1.0, log_every=3,
                           show_progress=False, param_groups=groups)
    assert log[-1]["loss"] < log[0]["loss"] and not torch.equal(before, model.projection.weight)


def test_documents_are_encoded_with_lora_folded_in_and_the_weights_come_back(colbert):
    model = copy.deepcopy(colbert)
    names = add_lora(model.tower, rank=4, train_top=2)
    with torch.no_grad():
        for name in names:
            if "lora_B" in name:
                model.tower.get_parameter(name).normal_(std=0.05)  # a trained-looking update, not B = 0
        unmerged = model(model.tokenize(DOCS, "document"), "document").numpy()  # (2, L, 128), three matmuls a linear
    before = model_fingerprint(model)
    vectors, lengths = model.encode_documents(DOCS)
    assert model_fingerprint(model) == before  # the base weights put back exactly: same cache keys
    assert not any(getattr(m, "merged", False) for m in model.modules())  # the update is live again for training
    for i, rows in enumerate(np.split(vectors.astype(np.float32), np.cumsum(lengths)[:-1])):
        assert np.abs(rows - unmerged[i, : lengths[i]]).max() < 2e-3  # fp16 rounding
    assert np.abs(vectors.astype(np.float32) - colbert.encode_documents(DOCS)[0].astype(np.float32)).max() > 0.05
