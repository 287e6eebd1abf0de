import ast
import subprocess
import sys

import pytest
import torch

from xencoder_lab import checkpoints, recipes
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.training import freeze_lower_layers

COMMITTED = sorted(p for p in checkpoints.CHECKPOINTS.glob("*") if (p / "manifest.json").exists())


@pytest.fixture(scope="module")
def model():
    return BiEncoder(max_length=32)


def test_save_and_load_round_trip(model, tmp_path):
    tuned = BiEncoder(max_length=32)
    names = freeze_lower_layers(tuned.query_tower, train_top=1)
    with torch.no_grad():
        for name, param in tuned.query_tower.named_parameters():
            if name in names:
                param.add_(0.01)
    folder = checkpoints.save_checkpoint(tuned.query_tower, names, {"recipe": "test"}, tmp_path / "ckpt")
    size = (folder / "weights.safetensors").stat().st_size
    assert 3e6 < size < 4e6  # one 384-wide layer in fp16, not the whole 90 MB model
    loaded = checkpoints.load_weights(BiEncoder(max_length=32).query_tower, folder)
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
    checkpoints.save_checkpoint(model.query_tower, names, {"v": 2}, folder, overwrite=True)
    assert checkpoints.read_manifest(folder) == {"v": 2}
    assert checkpoints.read_manifest(tmp_path / "ckpt.previous") == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "ckpt.previous"]  # no temporary left


def test_size_limit_and_wrong_model(model, tmp_path):
    everything = [n for n, _ in model.query_tower.named_parameters()]
    with pytest.raises(ValueError, match="over the 25 MB"):
        checkpoints.save_checkpoint(model.query_tower, everything, {}, tmp_path / "big")
    small = torch.nn.Linear(2, 2)
    folder = checkpoints.save_checkpoint(small, ["weight"], {}, tmp_path / "small")
    with pytest.raises(ValueError, match="does not fit this model"):
        checkpoints.load_weights(model.query_tower, folder)


def test_fingerprint_ignores_docstrings_but_not_code():
    def a(x):
        """one text"""
        return x + 1  # a comment

    def b(x):
        """another text"""
        return x + 1

    def c(x):
        return x + 2

    b.__qualname__ = c.__qualname__ = a.__qualname__
    assert checkpoints.fingerprint({}, [a]) == checkpoints.fingerprint({}, [b])
    assert checkpoints.fingerprint({}, [a]) != checkpoints.fingerprint({}, [c])


@pytest.mark.parametrize("folder", COMMITTED, ids=lambda p: p.name)
def test_committed_checkpoint_is_not_stale(folder):
    manifest = checkpoints.read_manifest(folder)
    assert manifest["fingerprint"] == recipes.recipe_fingerprint(manifest["recipe"]), (
        f"{folder.name} was made by other code or settings than its recipe now has: "
        f"retrain with `{manifest['command']} --overwrite`"
    )
    assert (folder / "weights.safetensors").stat().st_size <= checkpoints.MAX_BYTES


def test_committed_checkpoints_fit_the_budget():
    total = sum((p / "weights.safetensors").stat().st_size for p in COMMITTED)
    assert total <= 60 * 2**20


@pytest.mark.skipif(not (checkpoints.CHECKPOINTS / "bi-encoder").exists(), reason="no committed bi-encoder")
def test_committed_bi_encoder_changes_only_the_top_layers(model):
    tuned = recipes.load_bi_encoder()
    base = dict(model.query_tower.named_parameters())
    changed = {name for name, p in tuned.query_tower.named_parameters() if not torch.equal(p, base[name])}
    layers = {name.split(".")[2] for name in changed}
    assert changed and layers == {"3", "4", "5"}, layers
    assert tuned.pooling == "mean" and tuned.max_length == 256


@pytest.mark.parametrize("folder", [p for p in COMMITTED if "init" in checkpoints.read_manifest(p)], ids=lambda p: p.name)
def test_checkpoint_trained_on_top_of_another_still_matches_it(folder):
    manifest = checkpoints.read_manifest(folder)
    base = checkpoints.CHECKPOINTS / manifest["settings"]["init"]
    assert manifest["init"] == checkpoints.weights_digest(base), (
        f"{folder.name} started from another {base.name} than the one committed: retrain it"
    )


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_fingerprint_is_the_same_when_run_as_a_command(name):
    out = subprocess.run(
        [sys.executable, "-m", "xencoder_lab.recipes", name, "--fingerprint"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [recipes.recipe_fingerprint(name)]


def test_code_digest_reads_the_same_on_every_python():
    # ast.dump writes empty fields differently by version (3.12 adds type_params=[], 3.13 hides empties);
    # the fingerprint leaves them out, so a checkpoint made on one Python is not stale on another
    tree = ast.parse("def f(x, *, y=None) -> int:\n    return x")
    text = checkpoints._canonical(tree)
    assert "=[]" not in text and "=None" not in text
    assert "FunctionDef(name='f'" in text and "returns=Name(id='int'" in text
