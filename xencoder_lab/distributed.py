"""Corpus encoding as a distributed batch job, on Ray Data (notebook 09).

Encoding is the one cost that grows with the corpus and is paid again for every new model: about 30 abstracts a
second on 2 CPU cores is 4 days for 10M documents. It is embarrassingly parallel, so the course hands it to an
engine that already schedules such jobs across a cluster rather than writing one. The job:

    rows (id, text), sorted by length  ->  map_batches(encoder actor, one per worker)  ->  rows (id, vector)

Each actor loads the model once (``load_model``, a picklable function such as ``functools.partial(course_models.load,
"bi-encoder")``) and encodes whole batches with ``encode_documents``, the code the in-process path runs; sorting
by length keeps each batch's padding short. With no ``address`` Ray starts on this machine with ``workers`` CPUs
(tests, notebooks); with ``address="ray://head:10001"`` (or ``"auto"`` on a cluster node) the same call runs on a
cluster. The embeddings equal ``bi_encoder.encode_corpus``'s up to float32 noise from other batch paddings.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch

from .data import Dataset, document_text
from .extras import require


class _Encoder:
    """A Ray actor: one model per worker, loaded once; each call encodes one batch of rows."""

    def __init__(self, load_model: Callable[[], object], batch_size: int):
        torch.set_num_threads(1)  # one CPU per actor: the workers share the machine's cores
        self.model, self.batch_size = load_model(), batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.model.encode_documents(list(batch["text"]), self.batch_size, show_progress=False)  # (B, D)
        return {"row": batch["row"], "vector": vectors}


def encode_corpus_distributed(
    load_model: Callable[[], object],
    ds: Dataset,
    workers: int = 2,
    address: str | None = None,
    batch_size: int = 32,
    rows_per_task: int = 256,
    verbose: bool = False,
) -> np.ndarray:
    """Embeddings (N, D) of ``ds.corpus`` in corpus order, computed by ``workers`` Ray actors, each running
    ``load_model()``'s ``encode_documents`` on ``rows_per_task`` documents at a time.

    Ray is started here unless it runs already (then its own settings hold); ``address`` joins a cluster.
    Ray Data's plan and progress lines (INFO) are shown only with ``verbose=True``; its warnings always are.

    Args:
        load_model: makes the model in each worker (e.g. ``functools.partial(course_models.load, "bi-encoder")``).
        ds: the dataset whose corpus to embed.
        workers: Ray actors, one CPU each.
        address: a Ray cluster to join (e.g. ``"ray://head:10001"``); None: a local Ray.
        batch_size: texts per forward pass in a worker.
        rows_per_task: documents handed to a worker at a time.
        verbose: show Ray Data's INFO lines.

    Returns:
        (N, D) float32 numpy array, row i for the i-th document of ``ds.corpus``.

    Raises:
        ImportError: Ray is not installed (the ``scale`` extra).
        ValueError: ``workers`` below 1.
    """
    ray = require("ray", "scale", "encode_corpus_distributed")  # imported here: the package works without it
    require("ray.data", "scale", "encode_corpus_distributed")  # ray[data]: pyarrow, pandas

    if workers < 1:
        raise ValueError(f"workers={workers}: need at least one worker.")
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    texts = [document_text(doc) for doc in ds.corpus.values()]
    order = np.argsort([len(text) for text in texts], kind="stable")  # similar lengths share a batch
    rows = ray.data.from_items([{"row": int(i), "text": texts[i]} for i in order])
    encoded = rows.map_batches(
        _Encoder, fn_constructor_kwargs={"load_model": load_model, "batch_size": batch_size},
        batch_size=rows_per_task, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=workers),
    )
    out = None
    ray_data_log = logging.getLogger("ray.data")
    level = ray_data_log.level
    if not verbose:
        ray_data_log.setLevel(logging.WARNING)
    try:
        for batch in encoded.iter_batches(batch_format="numpy", batch_size=None):
            if out is None:
                out = np.empty((len(texts), batch["vector"].shape[1]), dtype=np.float32)  # (N, D)
            out[batch["row"]] = batch["vector"]
    finally:
        ray_data_log.setLevel(level)
    return out
