import copy

import numpy as np
import pytest
import torch

from xencoder_lab.cross_encoder import CrossEncoder, group_logits, group_pairs, rerank, score_candidates, score_groups
from xencoder_lab.data import document_text
from xencoder_lab.losses import listwise_loss
from xencoder_lab.training import train_groups


def test_pair_encoding_keeps_the_query_whole(warm):
    query = "Does vitamin D improve bone density?"
    features = warm.features([query], ["word " * 200])
    ids, types = features["input_ids"][0], features["token_type_ids"][0]
    assert len(ids) == 64
    n_query = len(warm.tokenizer(query)["input_ids"])  # [CLS] query [SEP]
    assert types[:n_query] == [0] * n_query and set(types[n_query:]) == {1}
    assert warm.tokenizer.decode(ids[:n_query], skip_special_tokens=True) == query.lower()


def test_batched_scoring_equals_one_pair_at_a_time(warm, toy):
    docs = [document_text(d) for d in toy.corpus.values()]
    query = toy.queries["q2"]
    batched = warm.score(query, docs, batch_size=5)
    single = np.array([warm.score(query, [d])[0] for d in docs])
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert batched.shape == (len(docs),) and batched.dtype == np.float32


def test_warm_start_ranks_before_any_training(warm, toy):
    ids = list(toy.corpus)
    docs = [document_text(toy.corpus[d]) for d in ids]
    hits = 0
    for qid, judged in toy.qrels.items():
        best = ids[int(np.argmax(warm.score(toy.queries[qid], docs)))]
        hits += judged.get(best, 0) > 0
    assert hits >= 4, hits  # of 6 toy claims


def test_plain_head_and_bad_input():
    plain = CrossEncoder(max_length=32)
    assert plain.scale is None and plain.head.weight.abs().sum() > 0  # a fresh head: random, not zero
    with pytest.raises(ValueError, match="pair 0 has an empty query"):
        plain.score(" ", ["a document"])
    with pytest.raises(ValueError, match="one of each per pair"):
        plain.score(["a", "b"], ["a document"])
    assert plain.score("q", []).shape == (0,)


def test_long_queries_are_cut_as_sentence_transformers_cuts_them(warm):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    from xencoder_lab.models import resolve_model

    long_query = "does aspirin " * 150  # 300 tokens: longer than the whole pair may be
    features = warm.features([long_query, "short claim"], ["a short abstract.", "word " * 200])
    assert [len(ids) for ids in features["input_ids"]] == [64, 64]  # no error, both cut to fit
    assert features["token_type_ids"][1].count(0) == len(warm.tokenizer("short claim")["input_ids"])  # whole
    reference = STCrossEncoder(resolve_model(), max_length=64, device="cpu").tokenizer
    pairs = [[long_query, "word " * 200], [long_query, "a short abstract."], ["short claim", "word " * 200]]
    expected = reference([p[0] for p in pairs], [p[1] for p in pairs], truncation=True, max_length=64)
    assert warm.features(*zip(*pairs))["input_ids"] == expected["input_ids"]
    assert np.isfinite(warm.score(long_query, ["a short abstract.", ""])).all()  # an empty document is scored


def test_listwise_loss_against_log_softmax():
    logits = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    expected = -torch.log_softmax(logits, dim=1)[:, 0].mean()  # the positive sits in column 0
    torch.testing.assert_close(listwise_loss(logits), expected)
    assert listwise_loss(torch.tensor([[9.0, 0.0], [0.0, 9.0]])).item() == pytest.approx(
        (np.log1p(np.exp(-9.0)) + np.log1p(np.exp(9.0))) / 2, rel=1e-5)


@pytest.mark.parametrize("loss", ["listwise", "bce"])
def test_training_lowers_the_loss(toy, loss):
    model = CrossEncoder(max_length=48, cosine_scale=20.0)
    docs = {d: document_text(doc) for d, doc in toy.corpus.items()}
    groups = [(toy.queries[q], docs[d], [docs["d16"], docs["d12"]]) for q, j in toy.qrels.items() for d in j][:4]
    # a hard task on purpose: the "positive" is a wrong abstract, so the loss starts high
    groups = [(q, docs["d10"], [pos, negs[0]]) for q, pos, negs in groups]

    def group_loss():
        with torch.no_grad():
            logits = torch.stack([torch.from_numpy(model.score(q, [p, *n])) for q, p, n in groups])
        return listwise_loss(logits).item()

    before = group_loss()
    seen = []
    log = train_groups(
        model, groups, steps=6, groups_per_step=2, lr=1e-4, head_lr=1e-2, warmup=1, loss=loss,
        log_every=3, evaluate=lambda m: 0.5, evaluate_every=3, on_evaluate=lambda m, s, v, log: seen.append(s),
        show_progress=False,
    )
    assert group_loss() < before
    assert seen == [3, 6] and [e["step"] for e in log if "loss" in e] == [3, 6]
    with pytest.raises(ValueError, match="unknown loss"):
        train_groups(model, groups, steps=1, loss="hinge", show_progress=False)


def test_score_groups_puts_each_groups_pairs_in_its_row(warm, toy):
    docs = [document_text(doc) for doc in toy.corpus.values()]
    queries = list(toy.queries.values())
    groups = [(queries[0], docs[0], [docs[1], docs[2]]), (queries[1], docs[3], [docs[4], docs[5]])]
    logits = score_groups(warm, groups)
    assert logits.shape == (2, 3)
    for row, (q, pos, negs) in zip(logits, groups):
        np.testing.assert_allclose(row.numpy(), warm.score(q, [pos, *negs]), atol=1e-5)
    with pytest.raises(ValueError, match="same number of negatives"):
        group_pairs([(queries[0], docs[0], [docs[1]]), (queries[1], docs[3], [docs[4], docs[5]])])


def test_bce_pos_weight_weighs_the_positive(warm, toy):
    """The logged loss of one step is the weighted BCE of that step's logits, computed by hand."""
    docs = [document_text(doc) for doc in toy.corpus.values()]
    group = (next(iter(toy.queries.values())), docs[0], [docs[1], docs[2], docs[3]])
    base = copy.deepcopy(warm)
    with torch.no_grad():  # logits near 1 instead of 20 x the cosine: the positive's term is far from 0
        base.scale.fill_(1.0)

    def first_loss(pos_weight):
        model = copy.deepcopy(base)
        log = train_groups(model, [group], steps=1, groups_per_step=1, lr=0.0, head_lr=0.0, warmup=1,
                                  loss="bce", pos_weight=pos_weight, log_every=1, show_progress=False)
        return log[0]["loss"]

    model = copy.deepcopy(base)
    torch.manual_seed(0)  # the loop seeds dropout with its seed (0) before its first step
    model.train()
    with torch.no_grad():
        z = model(model.tokenize([group[0]] * 4, [group[1], *group[2]]))  # (4,): the positive first
    log_sigmoid = torch.nn.functional.logsigmoid
    for p in (None, 3.0):
        expected = -((p or 1.0) * log_sigmoid(z[0]) + log_sigmoid(-z[1:]).sum()) / 4
        assert first_loss(p) == pytest.approx(expected.item(), rel=1e-4)
    assert first_loss(3.0) > first_loss(None) + 0.1  # 2 x (-log sigmoid(z+)) / 4 more
    with pytest.raises(ValueError, match="pos_weight"):
        train_groups(copy.deepcopy(warm), [group], steps=1, pos_weight=3.0, show_progress=False)


def test_rerank_reorders_only_the_top(warm, toy):
    ids = list(toy.corpus)
    run = {q: ids[::-1] for q in toy.queries}  # a poor first stage
    reranked = rerank(run, score_candidates(warm, toy, [run], depth=10), depth=10)
    for q in toy.queries:
        assert sorted(reranked[q][:10]) == sorted(run[q][:10]) and reranked[q][10:] == run[q][10:]
    logits = warm.score(toy.queries["q1"], [document_text(toy.corpus[d]) for d in reranked["q1"][:10]])
    assert (np.diff(logits) <= 1e-6).all()
    assert rerank({"q": ["a", "b", "c"]}, {"q": {"a": 1.0, "b": 1.0, "c": 2.0}}, depth=3) == {"q": ["c", "a", "b"]}


def test_score_candidates_scores_each_pair_once_and_caches(warm, toy, monkeypatch):
    ids = list(toy.corpus)
    runs = [{"q2": ids[:4], "q3": ids[2:6]}, {"q2": ids[2:6]}]  # q2 shares ids[2:4] between the runs
    calls = []
    score = warm.score
    monkeypatch.setattr(warm, "score", lambda q, d, *a: calls.append(len(d)) or score(q, d, *a))
    scores = score_candidates(warm, toy, runs, depth=4)
    assert calls == [10] and sorted(scores["q2"]) == sorted(ids[:6]) and sorted(scores["q3"]) == sorted(ids[2:6])
    for doc_id, logit in scores["q2"].items():
        assert logit == pytest.approx(float(score(toy.queries["q2"], [document_text(toy.corpus[doc_id])])[0]), abs=1e-4)
    assert score_candidates(warm, toy, runs, depth=4) == scores and calls == [10]  # read from the disk cache
    deeper = score_candidates(warm, toy, [{"q2": ids[:8]}], depth=8)  # only the 2 pairs not scored before
    assert calls == [10, 2] and all(deeper["q2"][d] == s for d, s in scores["q2"].items())
    calls.clear()
    warm.max_length = 32  # other settings: never served the cached scores
    try:
        score_candidates(warm, toy, runs, depth=2)
        assert calls == [6]
    finally:
        warm.max_length = 64


def test_handover_leaves_the_head_alone(warm, toy):
    """Over `handover` steps the cosine term fades out (its weight recorded step by step), then it is removed:
    the trained model scores with its [CLS] head only, and c = 0 on a warm model is that head."""
    docs = [document_text(doc) for doc in toy.corpus.values()]
    group = (next(iter(toy.queries.values())), docs[0], [docs[1], docs[2]])
    head_only = copy.deepcopy(warm)
    head_only.cosine_weight = 0.0
    with torch.no_grad():
        assert np.allclose(head_only.score(group[0], [group[1]]), 0.0)  # the warm start's head starts at 0
    model, weights = copy.deepcopy(warm), []

    def group_scores(chosen):
        weights.append(model.cosine_weight)
        return group_logits(model, chosen)

    train_groups(model, [group], steps=4, groups_per_step=1, lr=1e-4, head_lr=1e-2, warmup=1, handover=2,
                 group_scores=group_scores, show_progress=False)
    assert weights == [1.0, 0.5, 0.0, 0.0] and model.scale is None
    assert "scale" not in model.state_dict()
    with pytest.raises(ValueError, match="cosine_scale"):
        train_groups(model, [group], steps=1, handover=1, show_progress=False)


def test_score_parts_take_the_logit_apart(warm, toy):
    """The head's term and the warm start's add up to the logit at c = 1, and c weighs the second; a pair's cached
    logit is never served for another c."""
    from xencoder_lab.cross_encoder import pair_cache_parts

    model = copy.deepcopy(warm)
    with torch.no_grad():
        model.head.bias.fill_(0.5)
        model.head.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    docs = [document_text(doc) for doc in toy.corpus.values()][:4]
    query = next(iter(toy.queries.values()))
    both = model.score_parts(query, docs)  # (4, 2)
    assert both.shape == (4, 2) and np.all(both[:, 0] != 0) and np.all(both[:, 1] != 0)
    assert np.allclose(both.sum(1), model.score(query, docs), atol=1e-4)
    full_key = pair_cache_parts(model)
    model.cosine_weight = 0.5
    assert np.allclose(both[:, 0] + 0.5 * both[:, 1], model.score(query, docs), atol=1e-4)
    assert pair_cache_parts(model) != full_key
