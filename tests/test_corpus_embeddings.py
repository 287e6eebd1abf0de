"""The shipped corpus embeddings: made by ``encode_corpus``, served from the cache to the right model only, and
verified against the committed checkpoints."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from xencoder_lab import checkpoints, corpus_embeddings
from xencoder_lab.bi_encoder import BiEncoder, encode_corpus
from xencoder_lab.course_models import load_bi_encoder, load_poly_encoder
from xencoder_lab.data import load_beir
from xencoder_lab.poly_encoder import PolyEncoder
from xencoder_lab.protocol import OUT_OF_DOMAIN


def test_made_installed_and_served_without_encoding(tmp_path, toy, small_bi_encoder, monkeypatch):
    fewer = dataclasses.replace(toy, name="toy-fewer", corpus=dict(list(toy.corpus.items())[:-2]))  # a second corpus
    arrays = corpus_embeddings.make({"small": small_bi_encoder}, [toy, fewer], cache_root=tmp_path / "maker")
    path = corpus_embeddings.save(arrays, tmp_path / "corpus.npz")
    meta, stored = corpus_embeddings.load(path)
    assert stored["small"].shape == (len(toy.corpus), 384) and stored["small"].dtype == np.float32
    assert stored["small, toy-fewer"].shape == (len(toy.corpus) - 2, 384)
    assert 0.0 < meta["ndcg@10 on toy test"]["small"] <= 1.0
    assert 0.0 < meta["ndcg@10 on toy-fewer test"]["small, toy-fewer"] <= 1.0
    assert corpus_embeddings.install(small_bi_encoder, fewer, path, cache_root=tmp_path / "other")["embeddings"] == (
        "small, toy-fewer")

    cache = tmp_path / "learner"
    assert corpus_embeddings.install(small_bi_encoder, toy, path, cache_root=cache)["new to the cache"] is True
    assert corpus_embeddings.install(small_bi_encoder, toy, path, cache_root=cache)["new to the cache"] is False

    def no_encoding(*args, **kwargs):
        raise AssertionError("a shipped corpus was embedded again")

    served_by = copy.deepcopy(small_bi_encoder)
    monkeypatch.setattr(served_by, "encode_documents", no_encoding)
    np.testing.assert_array_equal(encode_corpus(served_by, toy, cache_root=cache), stored["small"])


def test_another_model_or_corpus_is_refused_and_check_finds_a_wrong_vector(tmp_path, toy, small_bi_encoder):
    arrays = corpus_embeddings.make({"small": small_bi_encoder}, [toy], cache_root=tmp_path)
    path = corpus_embeddings.save(arrays, tmp_path / "corpus.npz")
    assert corpus_embeddings.check(small_bi_encoder, toy, n=100, path=path)["largest difference"] < 1e-5

    other = copy.deepcopy(small_bi_encoder)
    with torch.no_grad():
        next(other.doc_tower.parameters()).add_(0.01)
    shorter = dataclasses.replace(toy, corpus=dict(list(toy.corpus.items())[:-1]))
    for model, ds in ((other, toy), (BiEncoder(max_length=64), toy), (small_bi_encoder, shorter)):
        with pytest.raises(ValueError, match="no embeddings of this corpus"):
            corpus_embeddings.install(model, ds, path, cache_root=tmp_path / "learner")

    arrays["small"] = arrays["small"] + np.float32(0.25)
    with pytest.raises(FileExistsError, match="overwrite"):
        corpus_embeddings.save(arrays, path)
    corpus_embeddings.save(arrays, path, overwrite=True)
    assert corpus_embeddings.check(small_bi_encoder, toy, n=100, path=path)["largest difference"] == pytest.approx(0.25)
    left = corpus_embeddings.install(small_bi_encoder, toy, path, cache_root=tmp_path / "verified", verify=3)
    assert left["new to the cache"] is False and "left out" in left
    assert left["largest difference"] == pytest.approx(0.25)
    assert not (tmp_path / "verified").exists() or not any((tmp_path / "verified").rglob("*.npy"))   # nothing kept


def test_each_kind_of_model_finds_its_own_file(tmp_path, toy, small_bi_encoder, monkeypatch):
    """With no path, a poly-encoder's embeddings come from the file beside the poly-encoder checkpoint, a
    bi-encoder's from the one beside the bi-encoder's; a file serves only the document tower it was made by."""
    monkeypatch.setattr(checkpoints, "CHECKPOINTS", tmp_path / "checkpoints")
    poly = PolyEncoder(codes=4, max_length=32, init_std=0.5)
    arrays = corpus_embeddings.make({"poly-encoder": poly}, [toy], cache_root=tmp_path / "maker")
    assert 0.0 < json.loads(str(arrays["meta"]))["ndcg@10 on toy test"]["poly-encoder"] <= 1.0  # its own search
    path = corpus_embeddings.save(arrays, corpus_embeddings.shipped_path(poly))
    assert path == tmp_path / "checkpoints" / "poly-encoder" / "corpus_embeddings.npz"
    assert corpus_embeddings.install(poly, toy, cache_root=tmp_path / "learner")["embeddings"] == "poly-encoder"
    assert corpus_embeddings.check(poly, toy, n=100)["largest difference"] < 1e-5
    with pytest.raises(FileNotFoundError, match="bi-encoder"):  # no bi-encoder file here, and the poly's is not it
        corpus_embeddings.install(small_bi_encoder, toy, cache_root=tmp_path / "learner")
    with pytest.raises(ValueError, match="no embeddings of this corpus"):  # other settings: another document tower
        corpus_embeddings.install(BiEncoder(max_length=64), toy, path, cache_root=tmp_path / "learner")


def test_a_missing_file_says_how_to_make_it(tmp_path, toy, small_bi_encoder):
    with pytest.raises(FileNotFoundError, match="python -m xencoder_lab.corpus_embeddings"):
        corpus_embeddings.install(small_bi_encoder, toy, tmp_path / "nothing.npz")


def test_the_shipped_file_is_the_course_bi_encoders(scifact_test):
    """The committed embeddings of both corpora re-embed the same with the base model and the committed checkpoint."""
    meta, arrays = corpus_embeddings.load()
    assert set(meta["entries"]) == {"zero-shot", "fine-tuned", "zero-shot, cacm", "fine-tuned, cacm"}
    cacm = load_beir(OUT_OF_DOMAIN, "test")
    for model in (BiEncoder(), load_bi_encoder(device="cpu"), load_bi_encoder("query-tower", device="cpu"),
                  load_bi_encoder("distilled-bi-encoder", device="cpu")):
        for ds in (scifact_test, cacm):
            assert corpus_embeddings.check(model, ds, n=12, seed=1)["largest difference"] < 1e-4


def test_the_shipped_poly_encoder_file_is_the_course_poly_encoders(scifact_test):
    poly = load_poly_encoder(device="cpu")
    path = corpus_embeddings.shipped_path(poly)
    meta, arrays = corpus_embeddings.load(path)
    assert path.parent.name == "poly-encoder" and set(meta["entries"]) == {"poly-encoder", "poly-encoder, cacm"}
    assert meta["command"] == "python -m xencoder_lab.corpus_embeddings --model poly-encoder"
    assert meta[f"ndcg@10 on {OUT_OF_DOMAIN} test"]["poly-encoder, cacm"] == pytest.approx(  # its recipe's figure
        checkpoints.read_manifest(path.parent)["metrics"]["fine-tuned"]["CACM"]["ndcg@10"], abs=1e-6)
    for ds in (scifact_test, load_beir(OUT_OF_DOMAIN, "test")):
        assert corpus_embeddings.check(poly, ds, n=12, seed=1)["largest difference"] < 1e-4


def test_the_command_never_replaces_a_file_unasked(tmp_path, capsys):
    existing = tmp_path / "corpus.npz"
    existing.write_bytes(b"a learner's file")
    with pytest.raises(SystemExit):
        corpus_embeddings.main(["--out", str(existing)])
    assert "pass --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"a learner's file"


def test_the_shipped_int8_file_is_the_fine_tuned_bi_encoders_int8_copy(scifact_test):
    """The int8 copy (``runtime``) finds its own file with no path, and re-embeds it to the bit on a CPU with the
    maker's int8 instructions (elsewhere within 1e-3, or the test says why not)."""
    pytest.importorskip("onnxruntime")
    from xencoder_lab.runtime import accelerate

    int8 = accelerate(load_bi_encoder(device="cpu"), "int8")
    path = corpus_embeddings.shipped_path(int8)
    meta, arrays = corpus_embeddings.load(path)
    assert path == corpus_embeddings.INT8_PATH
    assert set(meta["entries"]) == {"fine-tuned, int8", "fine-tuned, int8, cacm"}
    assert meta["command"] == "python -m xencoder_lab.corpus_embeddings --int8"
    with pytest.raises(ValueError, match="no embeddings of this corpus"):   # the PyTorch model's are not in it
        corpus_embeddings.check(load_bi_encoder(device="cpu"), scifact_test, path=path)
    same_cpu = meta["hardware"].get("int8 instructions") == checkpoints.hardware()["int8 instructions"]
    for ds in (scifact_test, load_beir(OUT_OF_DOMAIN, "test")):
        difference = corpus_embeddings.check(int8, ds, n=12, seed=1)["largest difference"]
        if same_cpu:
            assert difference < 1e-6
        elif difference >= 1e-3:
            pytest.skip(f"this CPU's int8 instructions differ from the file's: its kernels round otherwise "
                        f"({difference})")
