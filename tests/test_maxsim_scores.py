"""The shipped MaxSim scores: exact ColBERT search without the token vectors, verified against the model."""

import copy
import json

import numpy as np
import pytest
import torch

from xencoder_lab import maxsim_scores
from xencoder_lab.colbert import ColBERT, ColbertIndex, same_shape
from xencoder_lab.course_models import load
from xencoder_lab.data import Dataset, DatasetNotFoundError
from xencoder_lab.pipeline import Pipeline


@pytest.fixture(scope="module")
def colbert():
    return ColBERT(max_length=64)


@pytest.fixture()
def shipped(tmp_path, colbert, toy):
    return maxsim_scores.save(maxsim_scores.make(colbert, [toy]), tmp_path / "maxsim.npz")


def test_the_table_ranks_as_exact_search_does(shipped, colbert, toy):
    table, exact = maxsim_scores.ScoreTable(colbert, toy, shipped), ColbertIndex(colbert, toy)
    queries = list(toy.queries.values())
    (ids, scores), (exact_ids, exact_scores) = table.search(queries, k=5), exact.search(queries, k=5)
    assert ids == exact_ids and np.allclose(scores, exact_scores, atol=1e-5)
    assert Pipeline(toy, table).run(10, k=10) == Pipeline(toy, colbert).run(10, k=10)   # a first stage, as the index
    assert len(table) == len(toy.corpus)
    with pytest.raises(ValueError, match="hold no query 'aspirin"):
        table.search(["aspirin for a new question"], k=3)
    with pytest.raises(ValueError, match="k=99 but the corpus has"):
        table.search(queries, k=99)
    with pytest.raises(TypeError, match="a list of queries"):
        table.search(queries[0])


def test_check_finds_a_wrong_score_another_model_and_another_corpus(shipped, colbert, toy):
    fresh = maxsim_scores.check(colbert, toy, n=len(toy.corpus), path=shipped)
    assert fresh["documents checked"] == len(toy.corpus) and fresh["largest difference"] < 5e-3, fresh
    meta, arrays = maxsim_scores.load(shipped)
    key = f"{toy.name} {toy.split}"
    arrays[key] = arrays[key] + np.float32(0.5)
    wrong = maxsim_scores.save(arrays | {"meta": np.array(json.dumps(meta))}, shipped.with_name("wrong.npz"))
    assert maxsim_scores.check(colbert, toy, n=4, path=wrong)["largest difference"] == pytest.approx(0.5, abs=2e-2)

    other = copy.deepcopy(colbert)
    with torch.no_grad():
        other.projection.weight.add_(0.01)
    with pytest.raises(ValueError, match="another ColBERT"):
        maxsim_scores.ScoreTable(other, toy, shipped)
    fewer = Dataset(toy.name, toy.split, dict(list(toy.corpus.items())[1:]), toy.queries, toy.qrels)
    with pytest.raises(ValueError, match="holds no scores for these queries and documents of toy test"):
        maxsim_scores.ScoreTable(colbert, fewer, shipped)
    with pytest.raises(FileNotFoundError, match="python -m xencoder_lab.maxsim_scores"):
        maxsim_scores.ScoreTable(colbert, toy, shipped.with_name("nothing.npz"))


def test_an_index_of_the_same_shape_has_the_real_token_counts(colbert, toy):
    fake, real = same_shape(colbert, toy), ColbertIndex(colbert, toy)
    assert fake.lengths.tolist() == real.lengths.tolist() and fake.vectors.shape == real.vectors.shape
    assert np.allclose(np.linalg.norm(fake.vectors.astype(np.float32), axis=1), 1.0, atol=1e-3)
    assert fake.bytes_per_document() == real.bytes_per_document()
    with pytest.raises(ValueError, match="need 16 lengths"):
        ColbertIndex(colbert, toy, vectors=(real.vectors, real.lengths[1:]))


def test_the_shipped_file_is_the_course_colberts(scifact_test):
    """The committed file covers SciFact test and CACM, and re-scores the same with the committed checkpoint."""
    try:
        datasets = maxsim_scores.course_datasets()
    except DatasetNotFoundError as err:
        pytest.skip(f"CACM not available offline: {err}")
    model = load("colbert", device="cpu")
    meta, _ = maxsim_scores.load()
    assert set(meta["sets"]) == {f"{ds.name} {ds.split}" for ds in datasets}
    for ds in datasets:
        result = maxsim_scores.check(model, ds, n=4, seed=1)
        assert result["largest difference"] < 5e-3, (ds.name, result)
