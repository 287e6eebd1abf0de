"""Shared fixtures: the toy dataset, and SciFact when ``XLAB_DATA`` (or the user cache) has it."""

import pytest

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


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder, so no test reads what another wrote."""
    monkeypatch.setenv("XLAB_CACHE", str(tmp_path / "cache"))
