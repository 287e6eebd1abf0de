"""The shipped cross-encoder logits: made by the course's own scoring, served from the cache, and verified."""

import copy
import json
import subprocess

import numpy as np
import pytest
import torch

from xencoder_lab import checkpoints, pair_scores, recipe_training
from xencoder_lab.course_models import load_cross_encoder
from xencoder_lab.cross_encoder import score_candidates
from xencoder_lab.data import DatasetNotFoundError, load_beir
from xencoder_lab.retrieval import dense_run


@pytest.fixture()
def toy_sets(toy):
    return {(toy.name, toy.split): toy}


def test_made_installed_and_served_without_scoring(tmp_path, toy_sets, toy, warm, small_bi_encoder, monkeypatch):
    warm = copy.deepcopy(warm)   # with a head that is not zero, so the file's two terms both count
    with torch.no_grad():
        warm.head.weight.copy_(torch.linspace(-0.05, 0.05, warm.head.weight.numel()).reshape(warm.head.weight.shape))
    arrays = pair_scores.make(warm, small_bi_encoder, toy_sets, depth=3)
    path = pair_scores.save(arrays, tmp_path / "pairs.npz")
    meta, stored = pair_scores.load(path)
    assert meta["pairs"] == len(stored["logit"]) >= 3 * len(toy.queries)   # two first stages' top 3, merged
    assert np.abs(stored["head"]).max() > 0 and np.abs(stored["warm"]).max() > 0   # both terms kept, neither zero
    every = pair_scores.check(warm, n=meta["pairs"], path=path, datasets=toy_sets)   # the model's own logit, re-scored
    assert every["largest difference"] < 1e-4, every                                  # equals the two terms' sum
    head, cosine = (pair_scores.terms(path, toy.name, toy.split, t) for t in ("head", "warm"))
    logit = pair_scores.terms(path, toy.name, toy.split)
    assert set(logit) == set(toy.queries) and sum(map(len, logit.values())) == meta["pairs"]
    q, d = stored["query_id"][0], stored["doc_id"][0]
    assert logit[q][d] == pytest.approx(head[q][d] + warm.cosine_weight * cosine[q][d], abs=1e-5)
    with pytest.raises(ValueError, match="no 'score' term .*holds dataset, split"):
        pair_scores.terms(path, toy.name, toy.split, "score")
    with pytest.raises(ValueError, match="no pairs of cacm test"):
        pair_scores.terms(path, "cacm", "test")

    cache = tmp_path / "learner"
    assert pair_scores.install(warm, path, toy_sets, cache_root=cache)["new to the cache"] == meta["pairs"]
    assert pair_scores.install(warm, path, toy_sets, cache_root=cache)["new to the cache"] == 0

    def no_scoring(*args, **kwargs):
        raise AssertionError("a shipped pair was scored again")

    monkeypatch.setattr(warm, "score", no_scoring)
    runs = [{q: list(stored["doc_id"][stored["query_id"] == q]) for q in toy.queries}]
    served = score_candidates(warm, toy, runs, depth=10, cache_root=cache)
    for q, d, logit in zip(stored["query_id"], stored["doc_id"], stored["logit"]):
        assert served[q][d] == pytest.approx(float(logit))


def test_check_finds_a_wrong_logit_and_another_model_is_refused(tmp_path, toy_sets, warm, small_bi_encoder):
    arrays = pair_scores.make(warm, small_bi_encoder, toy_sets, depth=2)
    path = pair_scores.save(arrays, tmp_path / "pairs.npz")
    assert pair_scores.check(warm, n=100, path=path, datasets=toy_sets)["largest difference"] < 1e-4

    arrays["logit"] = arrays["logit"] + np.float32(0.5)
    with pytest.raises(FileExistsError, match="overwrite"):
        pair_scores.save(arrays, path)
    pair_scores.save(arrays, path, overwrite=True)
    assert pair_scores.check(warm, n=100, path=path, datasets=toy_sets)["largest difference"] == pytest.approx(0.5)
    left = pair_scores.install(warm, path, toy_sets, cache_root=tmp_path / "verified", verify=4)
    assert left["new to the cache"] == 0 and "left out" in left and left["largest difference"] == pytest.approx(0.5)
    pairs = list(zip(arrays["query_id"].tolist(), arrays["doc_id"].tolist()))
    runs = [{q: [d for p, d in pairs if p == q] for q, _ in pairs}]
    served = score_candidates(warm, next(iter(toy_sets.values())), runs, depth=len(pairs),
                              cache_root=tmp_path / "verified")   # scored now: the file's wrong logits were left out
    assert [served[q][d] for q, d in pairs] == pytest.approx((arrays["logit"] - 0.5).tolist(), abs=1e-4)

    other = copy.deepcopy(warm)
    with torch.no_grad():
        other.head.bias.add_(1.0)
    with pytest.raises(ValueError, match="another cross-encoder"):
        pair_scores.install(other, path, toy_sets, cache_root=tmp_path)
    onnx_copy = copy.copy(warm)   # what runtime.accelerate returns: the same weights, another backend
    onnx_copy.backend = "onnxruntime-int8"
    with pytest.raises(ValueError, match="model run in torch; this one runs in onnxruntime-int8"):
        pair_scores.install(onnx_copy, path, toy_sets, cache_root=tmp_path)


def test_an_int8_copys_file_holds_its_first_stage_only_and_serves_it_alone(tmp_path, toy_sets, toy, warm,
                                                                           small_bi_encoder, monkeypatch):
    pytest.importorskip("onnxruntime")
    from xencoder_lab.runtime import accelerate

    int8 = accelerate(warm, "int8", tmp_path / "onnx")
    arrays = pair_scores.make(int8, small_bi_encoder, toy_sets, depth=2)
    meta = json.loads(str(arrays["meta"]))
    assert meta["backend"]["backend"] == "onnxruntime-int8" and meta["command"].endswith("--int8")
    assert set(arrays) == {"dataset", "split", "query_id", "doc_id", "logit", "meta"}   # no terms: ONNX gives logits
    wanted = pair_scores.first_stage_pairs(toy, small_bi_encoder, 2)
    assert list(zip(arrays["query_id"].tolist(), arrays["doc_id"].tolist())) == wanted
    path = pair_scores.save(arrays, tmp_path / "pairs.int8.npz")
    assert pair_scores.check(int8, n=len(wanted), path=path, datasets=toy_sets)["largest difference"] == 0
    with pytest.raises(ValueError, match="int8, eager attention, one input per run; this one runs in torch"):
        pair_scores.install(warm, path, toy_sets, cache_root=tmp_path)
    cache = tmp_path / "learner"
    assert pair_scores.install(int8, path, toy_sets, cache_root=cache)["new to the cache"] == len(wanted)
    monkeypatch.setattr(int8, "score", lambda *a, **k: pytest.fail("a shipped int8 pair was scored again"))
    runs = [{q: [d for p, d in wanted if p == q] for q in toy.queries}]
    served = score_candidates(int8, toy, runs, depth=2, cache_root=cache)
    assert [served[q][d] for q, d in wanted] == pytest.approx(arrays["logit"].tolist())
    in_torch = score_candidates(warm, toy, runs, depth=2, cache_root=cache)   # scored anew, not read from the file
    assert [in_torch[q][d] for q, d in wanted] != pytest.approx(arrays["logit"].tolist(), abs=1e-6)


def test_the_mining_set_holds_the_positives_and_the_miners_candidates(tmp_path, toy_sets, toy, warm,
                                                                     small_bi_encoder, monkeypatch):
    monkeypatch.setattr(pair_scores, "MINED", (toy.name, toy.split))   # the toy set as notebook 06's mining set
    wanted = pair_scores.mining_pairs(toy, small_bi_encoder, depth=2)
    judged = {(q, d) for q, docs in toy.qrels.items() for d, grade in docs.items() if grade > 0}
    top = pair_scores.rerank_pairs(toy, small_bi_encoder, depth=2)   # BM25's and the bi-encoder's top 2
    dense = {(q, d) for q, docs in dense_run(small_bi_encoder, toy, 2).items() for d in docs}
    assert set(wanted) == judged | dense and judged - dense and set(top) - set(wanted)   # not the rerank pairs
    monkeypatch.setattr(pair_scores, "MINING_DEPTH", 2)
    arrays = pair_scores.make(warm, small_bi_encoder, toy_sets)
    assert list(zip(arrays["query_id"].tolist(), arrays["doc_id"].tolist())) == wanted
    meta = json.loads(str(arrays["meta"]))
    assert meta["command"].endswith("--mining") and "judged pairs" in meta["about"] and "BM25" not in meta["about"]
    path = pair_scores.save(arrays, tmp_path / "mining.npz")
    assert pair_scores.check(warm, n=len(wanted), path=path, datasets=toy_sets)["largest difference"] < 1e-4


def test_a_missing_file_says_how_to_make_it(tmp_path, warm):
    with pytest.raises(FileNotFoundError, match="python -m xencoder_lab.pair_scores"):
        pair_scores.install(warm, tmp_path / "nothing.npz")


@pytest.mark.parametrize("name, file", [(name, file) for name in pair_scores.MODELS
                                        for file in ("pairs.npz", pair_scores.INT8_PATH.name)]
                         + [("cross-encoder", pair_scores.MINING_PATH.name)])
def test_the_shipped_file_is_the_course_cross_encoders(scifact_test, name, file):
    """Each committed file re-scores the same with its committed checkpoint (an int8 file with the checkpoint's int8
    copy), and covers every query of its sets (the mining file: every judged pair of SciFact train too)."""
    try:
        datasets = pair_scores.course_datasets()
    except DatasetNotFoundError as err:
        pytest.skip(f"CACM or SciFact train not available offline: {err}")
    path = checkpoints.CHECKPOINTS / name / file
    meta, arrays = pair_scores.load(path)
    model = load_cross_encoder(name, device="cpu")
    sets = {pair_scores.MINING_PATH.name: [pair_scores.MINED],
            pair_scores.INT8_PATH.name: list(pair_scores.INT8_SETS)}.get(file, list(pair_scores.RERANKED))
    if file == pair_scores.INT8_PATH.name:
        pytest.importorskip("onnxruntime")
        from xencoder_lab.runtime import accelerate

        model = accelerate(model, "int8")
        assert meta["depth"] == pair_scores.INT8_DEPTHS[name] and len(arrays["logit"]) == meta["depth"] * sum(
            len(datasets[key].queries) for key in sets)   # each query's top depth, no more
    assert {(str(n), str(s)) for n, s in zip(arrays["dataset"], arrays["split"])} == set(sets)
    for dataset, split in sets:
        ds = datasets[dataset, split]
        rows = (arrays["dataset"] == dataset) & (arrays["split"] == split)
        covered = set(arrays["query_id"][rows].tolist())
        assert covered == set(ds.queries), f"{dataset}/{split}: queries without shipped pairs"
        if (dataset, split) == pair_scores.MINED:
            judged = {(q, d) for q, docs in ds.qrels.items() for d, grade in docs.items() if grade > 0}
            assert judged <= set(zip(arrays["query_id"][rows].tolist(), arrays["doc_id"][rows].tolist()))
    result = pair_scores.check(model, n=24, seed=1, path=path, datasets=datasets)
    made_on = meta["hardware"].get("int8 instructions")
    other_cpu = made_on != checkpoints.hardware()["int8 instructions"]
    if result["largest difference"] >= 1e-3 and "int8" in file and other_cpu:
        pytest.skip(f"this CPU's int8 instructions differ from the file's ({made_on}): its kernels round otherwise")
    assert result["largest difference"] < 1e-3, result


def test_the_command_puts_each_models_file_beside_its_checkpoint(tmp_path):
    args = checkpoints.artifact_arguments(["--model", "small-cross-encoder", "--check"], "", pair_scores.PATH, "",
                                          pair_scores.MODELS)
    assert args.out == checkpoints.CHECKPOINTS / "small-cross-encoder" / "pairs.npz"
    default = checkpoints.artifact_arguments(["--check"], "", pair_scores.PATH, "", pair_scores.MODELS)
    assert default.out == pair_scores.PATH
    with pytest.raises(SystemExit):
        checkpoints.artifact_arguments(["--model", "bi-encoder"], "", pair_scores.PATH, "", pair_scores.MODELS)
    others = [("mining", pair_scores.MINING_PATH, ""), ("int8", pair_scores.INT8_PATH, "")]
    mining = checkpoints.artifact_arguments(["--mining", "--check"], "", pair_scores.PATH, "", pair_scores.MODELS,
                                            others)
    assert mining.mining and not mining.int8 and mining.out == pair_scores.MINING_PATH
    int8 = checkpoints.artifact_arguments(["--int8", "--model", "small-cross-encoder", "--check"], "",
                                          pair_scores.PATH, "", pair_scores.MODELS, others)
    assert int8.out == checkpoints.CHECKPOINTS / "small-cross-encoder" / "pairs.int8.npz"
    with pytest.raises(SystemExit):   # one file at a time
        checkpoints.artifact_arguments(["--int8", "--mining", "--check"], "", pair_scores.PATH, "",
                                       pair_scores.MODELS, others)
    assert not default.__dict__.get("mining")   # a maker without a second file has no such flag
    with pytest.raises(SystemExit):
        checkpoints.artifact_arguments(["--mining"], "", pair_scores.PATH, "", pair_scores.MODELS)


def test_the_first_stages_terms_are_its_model_restored_from_history(tmp_path):
    """Notebook 05's "before": the first stage's CACM terms, shipped without its weights. Where the clone holds the
    repository's history, the weights the second stage started from are restored from it (as the recipe's error
    says), give the first stage's recorded outputs, and re-score a sample of the file."""
    source = f"{recipe_training.FIRST_STAGE_COMMIT}:data/checkpoints/cross-encoder/weights.safetensors"
    try:
        weights = subprocess.run(["git", "show", source], capture_output=True, check=True,
                                 cwd=checkpoints.CHECKPOINTS).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"the repository's history is not here (a shallow clone or an installed copy): {err}")
    first = checkpoints.CHECKPOINTS / "cross-encoder-first-stage"
    folder = tmp_path / first.name
    folder.mkdir()
    (folder / "weights.safetensors").write_bytes(weights)
    (folder / "manifest.json").write_bytes((first / "manifest.json").read_bytes())
    second = checkpoints.read_manifest(checkpoints.CHECKPOINTS / "cross-encoder")
    assert checkpoints.weights_digest(folder) == second["init"]
    model = load_cross_encoder(folder, device="cpu")
    assert checkpoints.close_enough(checkpoints.read_manifest(first)["probe"], checkpoints.probe_outputs(model))
    try:
        datasets = {("cacm", "test"): load_beir("cacm", "test")}
    except DatasetNotFoundError as err:
        pytest.skip(f"CACM not available offline: {err}")
    result = pair_scores.check(model, n=8, seed=3, path=first / "pairs.npz", datasets=datasets)
    assert result["largest difference"] < 1e-3, result
