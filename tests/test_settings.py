"""Tests for xencoder_lab.settings: each recipe is its checkpoint's stored settings, value for value and type for
type, and ``replace`` converts what the command line gives to each field's type."""

import dataclasses
import json

import pytest

from xencoder_lab import checkpoints, recipes, settings
from xencoder_lab.settings import (
    BI_ENCODER,
    COLBERT,
    CROSS_ENCODER,
    DISTILLATION,
    DISTILLED_BI_ENCODER,
    POLY_ENCODER,
    QUERY_TOWER,
    SETTINGS,
    SMALL_CROSS_ENCODER,
    PolyEncoderRecipe,
)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_each_recipe_is_what_its_checkpoint_stores(name):
    """As JSON, so an int where the manifest has a float (20 for 20.0), a tuple for a list or a missing None
    fails too; the dict itself compares equal to the manifest's, as ``course_models.verify`` compares them."""
    stored = checkpoints.read_manifest(checkpoints.CHECKPOINTS / name)["settings"]
    recipe = SETTINGS[name]
    assert recipe.asdict() == stored
    assert json.dumps(recipe.asdict(), sort_keys=True) == json.dumps(stored, sort_keys=True)
    assert set(recipe.keys()) == set(stored)
    assert type(recipe).from_dict(stored) == recipe


def test_shared_recipes_keep_their_bases_values():
    bi = BI_ENCODER.asdict()
    for recipe, own in ((POLY_ENCODER, {"lr"}), (COLBERT, {"lr", "temperature"})):
        shared = {k: v for k, v in recipe.asdict().items() if k in bi}
        assert set(bi) - set(shared) == {"pooling"}
        assert {k for k, v in shared.items() if bi[k] != v} == own
    for student in (SMALL_CROSS_ENCODER, DISTILLED_BI_ENCODER):
        assert DISTILLATION.asdict().items() <= student.asdict().items()


def test_replace_converts_text_to_each_fields_type():
    changed = BI_ENCODER.replace(lr="5e-5", temperature="1", steps="7", negative_depth="None")
    assert changed.lr == 5e-5 and type(changed.lr) is float
    assert changed.temperature == 1.0 and type(changed.temperature) is float
    assert changed.steps == 7 and type(changed.steps) is int
    assert changed.negative_depth is None and BI_ENCODER.replace(negative_depth="null").negative_depth is None
    assert BI_ENCODER.negative_depth == 10 and BI_ENCODER.lr == 5e-5  # the course's recipe is left as it was
    assert COLBERT.replace(augment="false").augment is False and COLBERT.replace(augment="True").augment is True
    assert BI_ENCODER.replace(dataset="123").dataset == "123"  # a text field keeps the text
    assert QUERY_TOWER.replace(corpus_queries="title").corpus_queries == "title"
    assert QUERY_TOWER.replace(corpus_queries='"title"').corpus_queries == "title"  # JSON, as recorded commands
    both = QUERY_TOWER.replace(corpus_queries='["title", "last sentence"]')
    assert both.corpus_queries == ["title", "last sentence"] and both.asdict()["corpus_queries"] == both.corpus_queries
    assert CROSS_ENCODER.replace(negative_margin="null").negative_margin is None  # mine_groups: no margin
    assert type(POLY_ENCODER.replace(scale=16).scale) is float  # Python values are converted too


def test_replace_refuses_unknown_settings_and_wrong_types():
    with pytest.raises(ValueError, match="has no setting 'pool'; its settings: dataset, validation_queries.*pooling"):
        BI_ENCODER.replace(pool="cls")
    with pytest.raises(ValueError, match="has no setting 'pooling'"):
        POLY_ENCODER.replace(pooling="mean")
    with pytest.raises(ValueError, match=r"BiEncoderRecipe.steps takes int, not '3.5'"):
        BI_ENCODER.replace(steps="3.5")
    for recipe, key, value in ((BI_ENCODER, "lr", "fast"), (BI_ENCODER, "lr", True), (COLBERT, "augment", "1"),
                               (BI_ENCODER, "negative_margin", None), (QUERY_TOWER, "corpus_queries", 3)):
        with pytest.raises(ValueError, match=f"{key} takes"):
            recipe.replace(**{key: value})


def test_recipes_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        BI_ENCODER.lr = 1e-3
    assert SETTINGS["bi-encoder"] is BI_ENCODER and isinstance(BI_ENCODER, settings.Recipe)


def test_from_dict_builds_a_checkpoints_model_settings():
    stored = {**POLY_ENCODER.asdict(), "codes": 4, "gone": 1}
    del stored["codes_lr"]
    recipe = PolyEncoderRecipe.from_dict(stored)
    assert recipe.codes == 4 and recipe.codes_lr == POLY_ENCODER.codes_lr and "gone" not in recipe.asdict()


def test_set_on_the_command_line_reaches_the_recipe_typed(monkeypatch, capsys):
    seen = {}
    monkeypatch.setitem(recipes.RECIPES["bi-encoder"], "training_probe", lambda: [])
    monkeypatch.setattr(recipes, "_bi_encoder", lambda args, out, probe, name, s: seen.setdefault("settings", s))
    recipes.main(["bi-encoder", "--set", "lr=1e-4", "--set", "negative_depth=None", "--record"])
    assert seen["settings"] == BI_ENCODER.replace(lr=1e-4, negative_depth=None)
    with pytest.raises(SystemExit):
        recipes.main(["bi-encoder", "--set", "lr=fast", "--record"])
    assert "--set lr=fast (bi-encoder): BiEncoderRecipe.lr takes float, not 'fast'" in capsys.readouterr().err
