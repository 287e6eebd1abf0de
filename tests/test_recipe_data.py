"""What each recipe trains on is pinned: its data, recomputed today, is the data its checkpoint's manifest records
(``recipe_data.data_digest``), so a change to splitting or mining fails here, before anyone retrains."""

import json

import pytest

from xencoder_lab import checkpoints, corpus_embeddings, recipe_data, recipe_training
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.protocol import relevant_documents
from xencoder_lab.settings import CROSS_ENCODER, CROSS_ENCODER_FIRST_STAGE, QUERY_TOWER, SETTINGS

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


def test_every_length_groups_cut_documents_to_every_length(shipped_embeddings):
    """The second stage's claim groups are the first's, with some negatives cut to a bare title or a title and
    first sentence, and a share of the positives cut; then label-free groups, titles -> texts and MedQuAD's."""
    s = CROSS_ENCODER
    groups, validation = recipe_data.every_length_groups(load_bi_encoder(), s)
    first, _ = recipe_data.cross_encoder_groups(load_bi_encoder(), CROSS_ENCODER)
    claims, titles = groups[:len(first)], groups[len(first):-s.medquad_queries]
    assert len(titles) == s.title_queries and {len(g[2]) for g in groups} == {s.negatives}
    assert [g[0] for g in claims] == [g[0] for g in first]  # the same claims, in the same order
    train = load_beir("scifact", "train")
    bare = {document_text({"title": d.get("title", "")}) for d in train.corpus.values()}
    for (claim, positive, negatives), (_, full_positive, full_negatives) in zip(claims, first):
        assert sum(n in bare for n in negatives) == s.bare_negatives, claim
        assert all(full.startswith(n.removesuffix(".")) for n, full in zip(negatives, full_negatives)), claim
        assert full_positive.startswith(positive)
    cut = sum(positive != full for (_, positive, _), (_, full, _) in zip(claims, first)) / len(claims)
    assert abs(cut - s.first_sentence_positives) < 0.05
    assert not set(validation.queries.values()) & {g[0] for g in claims}
    texts = {d.get("text", "") for d in train.corpus.values()}
    assert all(positive in texts and not positive.startswith(query) for query, positive, _ in titles)


def test_medquad_groups_take_negatives_from_other_documents():
    groups = recipe_data.medquad_groups(20, 5, seed=0)
    assert len(groups) == 20 and {len(negatives) for _, _, negatives in groups} == {5}
    assert all(positive.strip() and positive not in negatives for _, positive, negatives in groups)
    with pytest.raises(ValueError, match="MedQuAD question .* usable answers in BM25's top 200, need 250"):
        recipe_data.medquad_groups(1, 250, seed=0)


def test_the_second_stage_starts_from_its_init_checkpoint_or_says_how_to_get_it(tmp_path, monkeypatch):
    """The second stage loads its whole ``init`` model (here the committed cross-encoder stands in for the first
    stage, whose weights are not committed); the first stage starts a new head over the bi-encoder; a missing init
    says how to train or restore it."""
    committed = checkpoints.read_manifest(checkpoints.CHECKPOINTS / "cross-encoder")["probe"]
    model = recipe_training.cross_encoder_start(CROSS_ENCODER.replace(init="cross-encoder"))
    assert checkpoints.close_enough(committed, checkpoints.probe_outputs(model))
    fresh = recipe_training.cross_encoder_start(CROSS_ENCODER_FIRST_STAGE)
    assert not checkpoints.close_enough(committed, checkpoints.probe_outputs(fresh))
    monkeypatch.setattr(checkpoints, "CHECKPOINTS", tmp_path)
    missing = "no weights.*recipes cross-encoder-first-stage.*git show [0-9a-f]{40}:"
    with pytest.raises(FileNotFoundError, match=missing):
        recipe_training.cross_encoder_start(CROSS_ENCODER)


def test_the_first_stages_data_is_what_its_manifest_records(shipped_embeddings):
    manifest = checkpoints.read_manifest(checkpoints.CHECKPOINTS / "cross-encoder-first-stage")
    assert recipe_data.data_digest("cross-encoder-first-stage", CROSS_ENCODER_FIRST_STAGE) == manifest["data_probe"]
