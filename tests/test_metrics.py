"""Our metrics against trec_eval (through pytrec_eval, as BEIR uses it) on random runs."""

import random

import pytest
import pytrec_eval

from xencoder_lab import metrics
from xencoder_lab.metrics import evaluate, ndcg, per_query, recall, reciprocal_rank


def random_case(seed: int, n_queries: int = 30, n_docs: int = 60):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 6))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        qrels[qid][judged[0]] = rng.randint(1, 3)  # at least one relevant document
        if rng.random() < 0.9:  # some queries have no results at all
            run[qid] = rng.sample(docs, rng.randint(1, n_docs))
    return run, qrels


def trec(run, qrels, measure):
    # trec_eval ranks by score, so give strictly decreasing scores in our rank order.
    scored = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {measure})
    result = evaluator.evaluate(scored)
    key = measure.replace(".", "_")
    return {q: result[q][key] if q in result else 0.0 for q in qrels}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 10, 100])
def test_ndcg_and_recall_match_trec_eval(seed, k):
    run, qrels = random_case(seed)
    ours_ndcg = per_query(run, qrels, f"ndcg@{k}")
    ours_recall = per_query(run, qrels, f"recall@{k}")
    ref_ndcg, ref_recall = trec(run, qrels, f"ndcg_cut.{k}"), trec(run, qrels, f"recall.{k}")
    for qid in qrels:
        assert ours_ndcg[qid] == pytest.approx(ref_ndcg[qid], abs=1e-4)  # trec_eval prints 4 decimals
        assert ours_recall[qid] == pytest.approx(ref_recall[qid], abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 10])
def test_mrr_matches_trec_eval_on_cut_runs(seed, k):
    run, qrels = random_case(seed)
    cut = {q: r[:k] for q, r in run.items()}  # trec_eval's recip_rank has no cutoff: cut the run first
    ours = per_query(run, qrels, f"mrr@{k}")
    ref = trec(cut, qrels, "recip_rank")
    for qid in qrels:
        assert ours[qid] == pytest.approx(ref[qid], abs=1e-4)


def test_hand_examples():
    judged = {"a": 1, "b": 0, "c": 2}
    assert reciprocal_rank(["b", "x", "a"], judged, k=10) == pytest.approx(1 / 3)
    assert reciprocal_rank(["b", "x", "a"], judged, k=2) == 0.0
    assert recall(["c", "b"], judged, k=100) == 0.5  # grade 0 is not relevant
    assert ndcg(["c", "a"], judged, k=10) == pytest.approx(1.0)  # the ideal order
    assert ndcg(["a", "c"], judged, k=10) < 1.0
    assert ndcg(["x", "y"], {"x": 0}, k=10) == 0.0  # nothing relevant: 0, not a division by zero


def test_missing_queries_score_zero_and_bad_names_fail():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    assert evaluate({"q1": ["a"]}, qrels, ["mrr@10"]) == {"mrr@10": 0.5}
    with pytest.raises(ValueError, match="unknown metric 'map@10'"):
        evaluate({}, qrels, ["map@10"])
    with pytest.raises(ValueError, match="qrels are empty"):
        evaluate({}, {}, ["mrr@10"])


def test_compare_reads_the_bootstrap_both_ways():
    qrels = {f"q{i}": {"d1": 1} for i in range(40)}
    good = {q: ["d1"] for q in qrels}
    mixed = {q: (["d1"] if i % 2 else ["d0", "d1"]) for i, q in enumerate(qrels)}
    better = metrics.compare(mixed, good, qrels, samples=2000)
    worse = metrics.compare(good, mixed, qrels, samples=2000)
    assert better["gain"] == -worse["gain"] > 0
    assert better["95% interval"][0] > 0 and better["share of resamples with no gain"] == "< 0.0005"
    assert worse["95% interval"][1] < 0 and worse["share of resamples with no gain"] == "1.0000"


def test_compare_scores_reads_stored_per_query_figures_like_compare_reads_rankings():
    qrels = {f"q{i}": {"d1": 1} for i in range(40)}
    good = {q: ["d1"] for q in qrels}
    mixed = {q: (["d1"] if i % 3 else ["d0", "d0b", "d1"]) for i, q in enumerate(qrels)}
    stored_a, stored_b = metrics.per_query(mixed, qrels, "ndcg@10"), metrics.per_query(good, qrels, "ndcg@10")
    assert metrics.compare_scores(stored_a, stored_b, seed=3) == metrics.compare(mixed, good, qrels, seed=3)
    with pytest.raises(ValueError, match="same, non-empty set of queries"):
        metrics.compare_scores(stored_a, {"q0": 1.0})
