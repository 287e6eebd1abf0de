"""Exported folders load in sentence-transformers and give our embeddings and our logits."""

import copy

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder as STCrossEncoder
from sentence_transformers import SentenceTransformer

from xencoder_lab import course_models
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.cross_encoder import CrossEncoder
from xencoder_lab.export import HeadAndCosine, to_sentence_transformers

TEXTS = [
    "Does low-dose aspirin prevent a second heart attack?",
    "Vitamin D supplements and bone density in older women: a randomised trial. " * 8,  # over 64 tokens
    "Measles vaccination and its effect on child mortality.",
]
LONG_CLAIM = "Whether statins lower the risk of stroke in adults without heart disease, and by how much. " * 6
PAIRS = [
    ("Aspirin prevents heart attacks.", "Low-dose aspirin cut second heart attacks in a large trial."),
    ("Aspirin prevents heart attacks.", "Measles vaccine coverage rose after the campaign."),
    ("Vitamin D improves bone density.", TEXTS[1]),
    (LONG_CLAIM, "Statin therapy reduced ischaemic stroke by a fifth. " * 10),  # the claim alone is over 64 tokens
]


@pytest.fixture(scope="module")
def bi():
    """A BiEncoder whose weights differ from the base model's, so only carried weights can match it."""
    model = BiEncoder(max_length=64)
    before = model.encode_documents(TEXTS)
    with torch.no_grad():
        model.query_tower.encoder.layer[5].intermediate.dense.bias.add_(0.05)  # before a GELU: not undone by LayerNorm
    assert np.abs(model.encode_documents(TEXTS) - before).max() > 1e-3  # the change shows in the embeddings
    return model


@pytest.fixture(scope="module")
def bi_folder(bi, tmp_path_factory):
    return to_sentence_transformers(bi, tmp_path_factory.mktemp("export") / "bi-encoder")


@pytest.fixture(scope="module")
def cross():
    """A warm-start CrossEncoder with a non-zero head, so the head term and the cosine term both count."""
    model = CrossEncoder(max_length=64, cosine_scale=20.0)
    before = model.score([q for q, _ in PAIRS], [d for _, d in PAIRS])
    with torch.no_grad():
        model.head.weight.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(0))
        model.head.bias.fill_(0.5)
    assert np.abs(model.score([q for q, _ in PAIRS], [d for _, d in PAIRS]) - before).min() > 0.1
    return model


def st_cross_encoder(folder):
    return STCrossEncoder(str(folder), device="cpu", trust_remote_code=True)


def test_bi_encoder_folder_encodes_as_ours(bi, bi_folder):
    theirs = SentenceTransformer(str(bi_folder), device="cpu")
    np.testing.assert_allclose(theirs.encode(TEXTS), bi.encode_documents(TEXTS), atol=1e-5)
    assert theirs.max_seq_length == 64
    pooling, normalize = theirs[1], theirs[2]
    assert pooling.pooling_mode == "mean" and type(normalize).__name__ == "Normalize" and len(theirs) == 3


def test_cls_pooling_without_normalisation(bi, tmp_path):
    cls_raw = copy.copy(bi)  # the same tower, other settings
    cls_raw.pooling, cls_raw.normalize = "cls", False
    theirs = SentenceTransformer(str(to_sentence_transformers(cls_raw, tmp_path / "cls")), device="cpu")
    emb = theirs.encode(TEXTS)
    np.testing.assert_allclose(emb, cls_raw.encode_documents(TEXTS), atol=1e-5)
    assert theirs[1].pooling_mode == "cls" and len(theirs) == 2
    assert np.abs(np.linalg.norm(emb, axis=1) - 1).min() > 0.1  # not normalised
    assert np.abs(emb - bi.encode_documents(TEXTS)).max() > 0.1  # not the mean-pooled, normalised embeddings


def test_what_cannot_be_exported(bi, tmp_path):
    pooler = copy.copy(bi)
    pooler.pooling = "pooler"
    with pytest.raises(ValueError, match="pooling='pooler' has no sentence-transformers counterpart"):
        to_sentence_transformers(pooler, tmp_path / "pooler")
    two_towers = copy.copy(bi)
    two_towers.shared = False
    with pytest.raises(ValueError, match="shared=False"):
        to_sentence_transformers(two_towers, tmp_path / "two")
    with pytest.raises(TypeError, match="give a BiEncoder or a CrossEncoder"):
        to_sentence_transformers(torch.nn.Linear(2, 1), tmp_path / "linear")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_never_overwrites_silently(bi, cross, tmp_path):
    folder = to_sentence_transformers(cross, tmp_path / "model")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_sentence_transformers(bi, folder)
    assert (folder / "1_HeadAndCosine").is_dir()  # still the cross-encoder
    to_sentence_transformers(bi, folder, overwrite=True)
    assert not (folder / "1_HeadAndCosine").exists() and (folder / "1_Pooling").is_dir()
    np.testing.assert_allclose(SentenceTransformer(str(folder), device="cpu").encode(TEXTS[:1]),
                               bi.encode_documents(TEXTS[:1]), atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left beside it
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no sentence-transformers model"):
        to_sentence_transformers(bi, other, overwrite=True)
    assert [p.name for p in other.iterdir()] == ["keep.txt"]


def test_cross_encoder_folder_predicts_our_logits(cross, tmp_path):
    folder = to_sentence_transformers(cross, tmp_path / "cross-encoder")
    theirs = st_cross_encoder(folder)
    assert isinstance(theirs.activation_fn, torch.nn.Identity) and isinstance(theirs[1], HeadAndCosine)
    assert theirs.max_seq_length == 64
    ours = cross.score([q for q, _ in PAIRS], [d for _, d in PAIRS])
    np.testing.assert_allclose(theirs.predict(PAIRS), ours, atol=1e-4)
    assert len(cross.tokenizer(LONG_CLAIM)["input_ids"]) > 64  # the last pair had to cut the claim too
    assert len(cross.features([LONG_CLAIM], [PAIRS[3][1]])["input_ids"][0]) == 64
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        STCrossEncoder(str(folder), device="cpu")  # HeadAndCosine is not sentence-transformers' own code


def test_plain_head_exports_without_a_cosine(tmp_path):
    torch.manual_seed(0)
    plain = CrossEncoder(max_length=64)
    theirs = st_cross_encoder(to_sentence_transformers(plain, tmp_path / "plain"))
    assert theirs[1].cosine is False and "scale" not in theirs[1].state_dict()
    np.testing.assert_allclose(
        theirs.predict(PAIRS), plain.score([q for q, _ in PAIRS], [d for _, d in PAIRS]), atol=1e-4
    )


def test_course_checkpoints_export(tmp_path):
    claim = "Vitamin D supplementation increases bone mineral density in postmenopausal women."
    abstracts = [
        "In a two-year randomised trial of 400 postmenopausal women, daily vitamin D raised lumbar spine "
        "bone mineral density by 1.2% against placebo.",
        "Measles vaccination campaigns in West Africa lowered child mortality beyond the prevention of measles.",
    ]
    bi = course_models.load_bi_encoder(device="cpu")
    theirs = SentenceTransformer(str(to_sentence_transformers(bi, tmp_path / "bi")), device="cpu")
    np.testing.assert_allclose(theirs.encode([claim, *abstracts]), bi.encode_documents([claim, *abstracts]), atol=1e-5)
    cross = course_models.load_cross_encoder(device="cpu")
    ours = cross.score(claim, abstracts)
    np.testing.assert_allclose(st_cross_encoder(to_sentence_transformers(cross, tmp_path / "ce")).predict(
        [(claim, a) for a in abstracts]), ours, atol=1e-4)
    assert ours[0] > ours[1]
