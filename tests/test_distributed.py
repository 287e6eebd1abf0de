"""Corpus encoding on Ray Data gives the in-process embeddings, in corpus order, from the course checkpoint."""

import functools
import logging

import numpy as np
import pytest

from xencoder_lab import course_models
from xencoder_lab.bi_encoder import encode_corpus
from xencoder_lab.distributed import encode_corpus_distributed

ray = pytest.importorskip("ray", reason='Ray Data comes with the scale extra: pip install -e ".[scale]"')


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_encoding_equals_the_in_process_path(toy, local_ray, capfd):
    load_model = functools.partial(course_models.load, "bi-encoder")  # each worker loads the checkpoint itself
    distributed = encode_corpus_distributed(load_model, toy, workers=2, rows_per_task=5)  # 16 docs: 4 tasks
    assert "Execution plan" not in capfd.readouterr().err   # Ray Data's INFO lines only with verbose=True
    assert logging.getLogger("ray.data").getEffectiveLevel() < logging.WARNING   # and they pass again afterwards
    in_process = encode_corpus(load_model(), toy)  # (N, D)
    assert distributed.shape == in_process.shape
    np.testing.assert_allclose(distributed, in_process, atol=1e-5)  # same rows, same order


def test_no_workers_is_a_clear_error(toy):
    with pytest.raises(ValueError, match="at least one worker"):
        encode_corpus_distributed(lambda: None, toy, workers=0)
