"""What each recipe trains on is pinned: its data, recomputed today, is the data its checkpoint's manifest records
(``recipe_data.data_digest``), so a change to splitting or mining fails here, before anyone retrains. The texts,
positives and validation claims must be the same to the byte; the mined negatives, ranked by floating-point scores
that another CPU rounds otherwise, must share at least ``AGREE`` of their pairs with the record."""

import json

import pytest

from xencoder_lab import checkpoints, corpus_embeddings, recipe_data, recipe_training
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.protocol import relevant_documents
from xencoder_lab.settings import CROSS_ENCODER, CROSS_ENCODER_FIRST_STAGE, QUERY_TOWER, SETTINGS

AGREE = 0.9  # a CPU's rounding moves a handful of negatives in a thousand; another margin or depth most of them
PINNED = [name for name in SETTINGS
          if json.loads((checkpoints.CHECKPOINTS / name / "manifest.json").read_text()).get("data_probe")]


@pytest.fixture
def shipped_embeddings(scifact_test):
    """SciFact's corpus as the miners embed it, from the shipped file: nothing is encoded again."""
    for model in (BiEncoder(), load_bi_encoder()):
        corpus_embeddings.install(model, scifact_test)


def test_every_recipe_but_the_poly_encoder_is_pinned():
    assert sorted(PINNED) == sorted(set(SETTINGS) - {"poly-encoder"})


def assert_same_data(name, probe, recorded):
    retrain = f"retrain it with `python -m xencoder_lab.recipes {name} --overwrite`, or undo the change"
    assert probe["digest"] == recorded["digest"], (
        f"{name}: its training texts, positives or validation claims changed since the checkpoint was trained: "
        f"{retrain}")
    overlap = recipe_data.sketch_overlap(probe["negatives"], recorded["negatives"])
    assert overlap >= AGREE, (f"{name}: only about {overlap:.0%} of its mined negatives are the ones it was trained on "
                              f"(at least {AGREE:.0%} expected): {retrain}")


@pytest.mark.parametrize("name", PINNED)
def test_recipe_data_is_what_its_checkpoint_was_trained_on(name, shipped_embeddings):
    manifest = checkpoints.read_manifest(checkpoints.CHECKPOINTS / name)
    assert_same_data(name, recipe_data.data_digest(name), manifest["data_probe"])


def test_a_changed_split_or_miner_changes_the_probe(shipped_embeddings):
    """The pin can fail: another seed moves the validation claims; label-free queries add training rows; negatives
    mined deeper in the list leave the texts alone and move the sketch."""
    base = recipe_data.data_digest("query-tower")
    assert recipe_data.data_digest("query-tower", QUERY_TOWER.replace(seed=1))["digest"] != base["digest"]
    with_titles = recipe_data.data_digest("query-tower", QUERY_TOWER.replace(corpus_queries="title"))
    assert with_titles["digest"] != base["digest"]
    bi = recipe_data.data_digest("bi-encoder")
    deeper = recipe_data.data_digest("bi-encoder", SETTINGS["bi-encoder"].replace(
        negative_depth=3 * SETTINGS["bi-encoder"].negative_depth))
    assert deeper["digest"] == bi["digest"] and len(deeper["negatives"]) == recipe_data.SKETCH
    assert recipe_data.sketch_overlap(deeper["negatives"], bi["negatives"]) < AGREE
    assert recipe_data.sketch_overlap(bi["negatives"], bi["negatives"]) == 1.0


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


def test_every_length_groups_add_spread_negatives_after_the_hardest(shipped_embeddings):
    """``spread_negatives`` keeps each group's hardest negatives where they were and adds more, from deeper in the
    miner's list: in claim groups (cut to every length like the rest), title groups and MedQuAD groups."""
    s = CROSS_ENCODER.replace(negatives=9, spread_negatives=6, title_queries=20, medquad_queries=20)
    groups, _ = recipe_data.every_length_groups(load_bi_encoder(), s)
    hardest, _ = recipe_data.cross_encoder_groups(load_bi_encoder(), s)
    assert {len(negatives) for _, _, negatives in groups} == {15}
    train = load_beir("scifact", "train")
    bare = {document_text({"title": d.get("title", "")}) for d in train.corpus.values()}
    for (claim, _, negatives), (_, _, full) in zip(groups, hardest):
        assert all(f.startswith(n.removesuffix(".")) for n, f in zip(negatives[:9], full)), claim
        assert sum(n in bare for n in negatives) == s.bare_negatives, claim
        assert not any(f.startswith(n.removesuffix(".")) for n in negatives[9:] for f in full), claim


def test_medquad_groups_spread_negatives_come_from_bms_top_depth():
    hardest = recipe_data.medquad_groups(20, 5, seed=0)
    spread = recipe_data.medquad_groups(20, 5, seed=0, spread=3, depth=100)
    for (query, positive, negatives), (_, _, extra) in zip(hardest, spread):
        assert extra[:5] == negatives and len(extra) == 8, query
        assert not set(extra[5:]) & set(negatives) and positive not in extra[5:], query
    shallow = recipe_data.medquad_groups(20, 5, seed=0, spread=3, depth=5)  # ranks 1-5 hold nothing past the 5
    assert [negatives for _, _, negatives in shallow] == [negatives for _, _, negatives in hardest]


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
    assert_same_data("cross-encoder-first-stage", recipe_data.data_digest("cross-encoder-first-stage",
                                                                          CROSS_ENCODER_FIRST_STAGE),
                     manifest["data_probe"])
