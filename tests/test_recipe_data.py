"""What each recipe trains on is pinned: its data, recomputed today, is the data its checkpoint's manifest records
(``recipe_data.data_digest``), so a change to splitting or mining fails here, before anyone retrains."""

import json

import pytest

from xencoder_lab import checkpoints, corpus_embeddings, recipe_data
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.protocol import relevant_documents
from xencoder_lab.settings import QUERY_TOWER, SETTINGS

PINNED = [name for name in SETTINGS
          if json.loads((checkpoints.CHECKPOINTS / name / "manifest.json").read_text()).get("data_probe")]


@pytest.fixture
def shipped_embeddings(scifact_test):
    """SciFact's corpus as the miners embed it, from the shipped file: nothing is encoded again."""
    for model in (BiEncoder(), load_bi_encoder()):
        corpus_embeddings.install(model, scifact_test)


def test_every_recipe_but_the_poly_encoder_is_pinned():
    assert sorted(PINNED) == sorted(set(SETTINGS) - {"poly-encoder"})


@pytest.mark.parametrize("name", PINNED)
def test_recipe_data_is_what_its_checkpoint_was_trained_on(name, shipped_embeddings):
    manifest = checkpoints.read_manifest(checkpoints.CHECKPOINTS / name)
    assert recipe_data.data_digest(name) == manifest["data_probe"], (
        f"{name}: its training data (split, mined negatives or texts) changed since the checkpoint was trained: "
        f"retrain it with `python -m xencoder_lab.recipes {name} --overwrite`, or undo the change")


def test_a_changed_split_or_miner_changes_the_digest(shipped_embeddings):
    """The pin can fail: another seed moves the validation claims; label-free queries add training rows."""
    base = recipe_data.data_digest("query-tower")
    assert recipe_data.data_digest("query-tower", QUERY_TOWER.replace(seed=1)) != base
    assert recipe_data.data_digest("query-tower", QUERY_TOWER.replace(corpus_queries="title")) != base


def test_validation_by_document_holds_out_whole_answers(shipped_embeddings):
    """The query tower's validation claims cite no abstract a training claim cites (protocol)."""
    queries, positives, relevant, d_emb, validation = recipe_data.query_tower_training_data(
        BiEncoder(max_length=QUERY_TOWER.max_length, shared=False), QUERY_TOWER.replace(dataset="scifact"))
    ids = list(validation.corpus)
    assert not relevant_documents(validation) & {ids[row] for row in positives}
    assert len(validation.queries) >= QUERY_TOWER.validation_queries and len(queries) == len(positives)
