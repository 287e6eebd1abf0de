"""Tests for xencoder_lab.checkpoints: small course checkpoints pinned by behaviour, whole models."""

import copy
import json

import numpy as np
import pytest
import torch

from xencoder_lab import checkpoints, recipe_training, recipes
from xencoder_lab.checkpoints import load_model, save_model
from xencoder_lab.colbert import ColBERT
from xencoder_lab.poly_encoder import PolyEncoder
from xencoder_lab.training import freeze_lower_layers

COMMITTED = sorted(p for p in checkpoints.CHECKPOINTS.glob("*") if (p / "weights.safetensors").exists())


@pytest.fixture(scope="module")
def model(small_bi_encoder):
    return small_bi_encoder


def test_save_and_load_round_trip(model, tmp_path):
    tuned = copy.deepcopy(model)
    names = freeze_lower_layers(tuned.query_tower, train_top=1)
    with torch.no_grad():
        for name, param in tuned.query_tower.named_parameters():
            if name in names:
                param.add_(0.01)
    folder = checkpoints.save_checkpoint(tuned.query_tower, names, {"recipe": "test"}, tmp_path / "ckpt")
    size = (folder / "weights.safetensors").stat().st_size
    assert 3e6 < size < 4e6  # one 384-wide layer in fp16, not the whole 90 MB model
    loaded = checkpoints.load_weights(copy.deepcopy(model).query_tower, folder)
    for name, param in loaded.named_parameters():
        reference = dict(tuned.query_tower.named_parameters())[name]
        tolerance = 1e-3 * reference.abs().max().item() if name in names else 0  # fp16 for stored tensors
        assert torch.allclose(param, reference, atol=tolerance), name
    assert checkpoints.read_manifest(folder) == {"recipe": "test"}


def test_never_overwrites_silently(model, tmp_path):
    names = ["pooler.dense.bias"]
    folder = checkpoints.save_checkpoint(model.query_tower, names, {"v": 1}, tmp_path / "ckpt")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        checkpoints.save_checkpoint(model.query_tower, names, {"v": 2}, folder)
    (folder / "variants.json").write_text('{"runs": []}')   # recorded runs stay with the recipe's checkpoint
    (folder / "pairs.npz").write_bytes(b"made from the old weights")   # ... what the old weights made does not
    checkpoints.save_checkpoint(model.query_tower, names, {"v": 2}, folder, overwrite=True)
    assert checkpoints.read_manifest(folder) == {"v": 2}
    assert checkpoints.read_manifest(tmp_path / "ckpt.previous") == {"v": 1}
    assert (folder / "variants.json").read_text() == (tmp_path / "ckpt.previous" / "variants.json").read_text()
    assert not (folder / "pairs.npz").exists() and (tmp_path / "ckpt.previous" / "pairs.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "ckpt.previous"]  # no temporary left
    with pytest.raises(FileExistsError, match="nothing a user saved is overwritten"):
        save_model(model, folder)


def test_size_limit_and_wrong_model(model, tmp_path):
    everything = [n for n, _ in model.query_tower.named_parameters()]
    with pytest.raises(ValueError, match="over the 25 MB"):
        checkpoints.save_checkpoint(model.query_tower, everything, {}, tmp_path / "big")
    small = torch.nn.Linear(2, 2)
    folder = checkpoints.save_checkpoint(small, ["weight"], {}, tmp_path / "small")
    with pytest.raises(ValueError, match="does not fit this model"):
        checkpoints.load_weights(model.query_tower, folder)


def test_whole_models_round_trip(model, warm, tmp_path):
    changed = copy.deepcopy(warm)
    with torch.no_grad():
        changed.head.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
        changed.scale.fill_(7.0)
    docs = ["Aspirin cut heart attacks.", "Measles vaccine works.", ""]
    loaded = load_model(save_model(changed, tmp_path / "cross"))
    np.testing.assert_allclose(loaded.score("aspirin", docs), changed.score("aspirin", docs), atol=1e-5)
    loaded = load_model(save_model(model, tmp_path / "bi"))
    np.testing.assert_allclose(loaded.encode_documents(docs), model.encode_documents(docs), atol=1e-6)
    assert (loaded.pooling, loaded.max_length) == (model.pooling, model.max_length)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load_model(tmp_path)
    with pytest.raises(TypeError, match="not a Linear"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "linear")


def test_save_model_refuses_what_it_would_lose(tmp_path):
    """A PolyEncoder is a BiEncoder with codes: save_model used to write its towers and drop the codes, so the
    model read back scored differently. It now refuses, as it does for ColBERT, and writes nothing."""
    poly = PolyEncoder(codes=4, max_length=32, init_std=0.5)
    with pytest.raises(TypeError, match="not a PolyEncoder .*codes.*save_checkpoint"):
        save_model(poly, tmp_path / "poly")
    with pytest.raises(TypeError, match="not a ColBERT"):
        save_model(ColBERT(dim=16, max_length=32), tmp_path / "colbert")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("folder", COMMITTED, ids=lambda p: p.name)
def test_committed_checkpoint_is_not_stale(folder):
    manifest = recipes.verify(folder.name)  # settings, outputs on the probe inputs, first training losses
    assert manifest["recipe"] == folder.name
    assert (folder / "weights.safetensors").stat().st_size <= checkpoints.MAX_BYTES


def test_the_cross_encoders_first_stage_is_its_recipe_and_the_second_starts_from_it():
    """The first stage keeps its manifest, not its weights (one cross-encoder fits the budget): its settings and
    training losses are today's recipe's, and the second stage's manifest names the weights it started from."""
    folder = checkpoints.CHECKPOINTS / "cross-encoder-first-stage"
    first = checkpoints.read_manifest(folder)
    assert first["settings"] == recipes.RECIPES["cross-encoder-first-stage"]["settings"].asdict()
    probe = recipes.RECIPES["cross-encoder-first-stage"]["training_probe"]
    assert checkpoints.close_enough(first["training_probe"], probe())
    assert not (folder / "weights.safetensors").exists() and folder not in COMMITTED
    second = checkpoints.read_manifest(checkpoints.CHECKPOINTS / "cross-encoder")
    assert second["settings"]["init"] == folder.name and len(second["init"]) == 16
    assert second["training_probe"] != first["training_probe"]  # the second stage's learning rates, same start


def test_committed_checkpoints_fit_the_budget():
    total = sum((p / "weights.safetensors").stat().st_size for p in COMMITTED)
    assert total <= 60 * 2**20


def _copy_of_committed(name, tmp_path):
    folder = tmp_path / name
    folder.mkdir()
    for f in ("weights.safetensors", "manifest.json"):
        (folder / f).write_bytes((checkpoints.CHECKPOINTS / name / f).read_bytes())
    return folder, json.loads((folder / "manifest.json").read_text())


@pytest.mark.skipif(not (checkpoints.CHECKPOINTS / "bi-encoder").exists(), reason="no committed bi-encoder")
def test_stale_when_settings_outputs_or_training_change(tmp_path, monkeypatch):
    folder, manifest = _copy_of_committed("bi-encoder", tmp_path)
    recipes.verify("bi-encoder", folder, training=False)  # the copy verifies
    checkpoints.write_manifest(folder, {**manifest, "settings": {**manifest["settings"], "max_length": 128}})
    with pytest.raises(recipes.StaleCheckpointError, match="settings changed \\(max_length\\).*--overwrite"):
        recipes.verify("bi-encoder", folder, training=False)
    checkpoints.write_manifest(folder, manifest)
    monkeypatch.setattr("xencoder_lab.checkpoints.document_text", lambda doc: doc["text"])  # titles dropped
    with pytest.raises(recipes.StaleCheckpointError, match="other outputs"):
        recipes.verify("bi-encoder", folder, training=False)
    monkeypatch.undo()
    shifted = [x + 0.01 for x in manifest["training_probe"]]
    monkeypatch.setitem(recipes.RECIPES["bi-encoder"], "training_probe", lambda: shifted)
    with pytest.raises(recipes.StaleCheckpointError, match="other losses"):
        recipes.verify("bi-encoder", folder)


def test_training_probe_is_sensitive_to_the_loss(monkeypatch):
    stored = checkpoints.read_manifest(checkpoints.CHECKPOINTS / "bi-encoder")["training_probe"]
    from xencoder_lab import losses

    original = losses.scores_loss
    monkeypatch.setattr("xencoder_lab.training.scores_loss",
                        lambda scores, t: original(scores, 2 * t))  # another loss, same shapes
    assert not checkpoints.close_enough(stored, recipe_training.bi_encoder_training_probe())


@pytest.mark.skipif(not (checkpoints.CHECKPOINTS / "bi-encoder").exists(), reason="no committed bi-encoder")
def test_committed_bi_encoder_changes_only_the_top_layers(model):
    tuned = recipes.load_bi_encoder()
    base = dict(model.query_tower.named_parameters())
    changed = {name for name, p in tuned.query_tower.named_parameters() if not torch.equal(p, base[name])}
    layers = {name.split(".")[2] for name in changed}
    assert changed and layers == {"3", "4", "5"}, layers
    assert tuned.pooling == "mean" and tuned.max_length == 256


@pytest.mark.parametrize("name", ["query-tower", "distilled-bi-encoder"])
def test_committed_query_towers_leave_the_documents_zero_shot(model, name):
    if not (checkpoints.CHECKPOINTS / name).exists():
        pytest.skip(f"no committed {name}")
    tuned = recipes.load_bi_encoder(name)  # a recipe name finds the course checkpoint
    assert not tuned.shared
    base = dict(model.query_tower.named_parameters())
    assert all(torch.equal(p, base[name]) for name, p in tuned.doc_tower.named_parameters())
    changed = {name.split(".")[2] for name, p in tuned.query_tower.named_parameters() if not torch.equal(p, base[name])}
    assert changed == {"3", "4", "5"}, changed
    docs = ["Aspirin and heart attacks.", "A bare title"]
    np.testing.assert_allclose(tuned.encode_documents(docs), model.encode_documents(docs), atol=1e-6)
    assert np.abs(tuned.encode_queries(docs) - model.encode_queries(docs)).max() > 1e-3


ON_TOP = [p for p in COMMITTED if "init" in checkpoints.read_manifest(p)]


@pytest.mark.parametrize(  # the cross-encoder's base, its first stage, is in the repository's history only (its
    # digest is checked there: test_pair_scores.test_the_first_stages_terms_are_its_model_restored_from_history)
    "folder", [p for p in ON_TOP if p.name != "cross-encoder"], ids=lambda p: p.name
)
def test_checkpoint_trained_on_top_of_another_still_matches_it(folder):
    manifest = checkpoints.read_manifest(folder)
    base = checkpoints.CHECKPOINTS / manifest["settings"]["init"]
    assert manifest["init"] == checkpoints.weights_digest(base), (
        f"{folder.name} started from another {base.name} than the one committed: retrain it"
    )


def test_verify_as_a_command(capsys):
    recipes.main(["bi-encoder", "--verify"])
    assert "reproduces its settings, outputs and training losses" in capsys.readouterr().out


def test_the_second_stage_runs_its_own_steps(tmp_path, capsys):
    with pytest.raises(SystemExit):
        recipes.main(["cross-encoder", "--steps", "3", "--out", str(tmp_path / "ce")])
    assert "every_length.py" in capsys.readouterr().err and not (tmp_path / "ce").exists()
