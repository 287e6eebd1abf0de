"""Shared fixtures: the toy dataset, SciFact when ``XLAB_DATA`` (or the user cache) has it, and the models,
each built once per test run (a test that changes a model's weights works on a ``copy.deepcopy``)."""

import pytest

from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.cross_encoder import CrossEncoder
from xencoder_lab.data import TOY_PATH, DatasetNotFoundError, load_beir


@pytest.fixture(scope="session")
def toy():
    return load_beir("toy", split="test", path=TOY_PATH)


@pytest.fixture(scope="session")
def scifact_test():
    try:
        return load_beir("scifact", split="test", download=False)
    except DatasetNotFoundError as err:
        pytest.skip(f"SciFact not available offline: {err}")


@pytest.fixture(scope="session")
def bi_encoder():
    """all-MiniLM-L6-v2 as the course uses it: mean pooling, 256 tokens, normalised."""
    return BiEncoder()


@pytest.fixture(scope="session")
def small_bi_encoder():
    """The same model reading at most 32 tokens: fast, for tests that encode many texts."""
    return BiEncoder(max_length=32)


@pytest.fixture(scope="session")
def warm():
    """A cross-encoder with the warm start (head at 0, 20 x the cosine), 64 tokens."""
    return CrossEncoder(max_length=64, cosine_scale=20.0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder, so no test reads what another wrote."""
    monkeypatch.setenv("XLAB_CACHE", str(tmp_path / "cache"))
