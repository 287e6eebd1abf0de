import numpy as np
import pytest

from xencoder_lab.token_compression import compress_tokens


@pytest.fixture(scope="module")
def tokens():
    x = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)                  # (2000, 32) unit vectors


def test_pq8_stores_8_bytes_and_decodes_close_to_the_originals(tokens):
    back, width = compress_tokens(tokens, "PQ8", seed=0)
    assert width == 8 and back.shape == tokens.shape and back.dtype == np.float32
    others = np.random.default_rng(1).standard_normal(tokens.shape).astype(np.float32)
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    assert np.linalg.norm(back - tokens, axis=1).mean() < 0.5 * np.linalg.norm(others - tokens, axis=1).mean()


def test_pca16_stores_16_fp16_numbers_and_gives_unit_rows(tokens):
    back, width = compress_tokens(tokens, "PCA16", seed=0)
    assert width == 32 and back.shape == tokens.shape
    assert np.allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-5)
    assert (back * tokens).sum(axis=1).mean() > 0.5                      # half of 32 directions keep most of it


@pytest.mark.parametrize("key", ["PQ8", "PCA16"])
def test_the_same_seed_gives_the_same_output(tokens, key):
    first, _ = compress_tokens(tokens, key, sample=1000, seed=3)
    again, _ = compress_tokens(tokens, key, sample=1000, seed=3)
    assert np.array_equal(first, again)


@pytest.mark.parametrize("key", ["bogus", "PQ7", "PCA32", "PCAx"])
def test_a_key_it_cannot_use_raises_naming_the_key(tokens, key):
    with pytest.raises(ValueError, match=repr(key)):
        compress_tokens(tokens, key)


def test_too_few_vectors_to_train_raises(tokens):
    with pytest.raises(ValueError, match="'PQ8'.*100 vectors"):
        compress_tokens(tokens[:100], "PQ8")
