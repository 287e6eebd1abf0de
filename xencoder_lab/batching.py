"""Length-sorted batching with dynamic padding, and evaluation mode for a block (built in notebook 02).

Both encoders spend their time in transformer passes over padded batches. Padding every text to the longest
in the whole list wastes most of that work; padding each batch to its own longest row, with rows of nearly the
same length batched together, wastes almost none:

    cost ~ sum over batches of (rows in batch) x (longest row in batch)

``run_sorted`` tokenizes nothing itself: it takes token ids (unpadded lists), sorts rows by length, pads each
batch (``pad_batch``), runs a function on it under ``torch.inference_mode()`` and puts the rows back in the
order given. The bi-encoder embeds texts with it; the cross-encoder scores pairs with it.

>>> features = {"input_ids": [[101, 7, 8, 102], [101, 102]], "attention_mask": [[1, 1, 1, 1], [1, 1]]}
>>> run_sorted(features, lambda batch: batch["attention_mask"].sum(1, keepdim=True), pad_id=0, batch_size=1)
array([[4.],
       [2.]], dtype=float32)
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

PROGRESS_MIN = 256  # show a progress bar from this many rows on


def pad_batch(features: Mapping[str, list], rows: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Tensors (B, L) for ``rows`` of tokenized ``features``, right-padded to the longest row (mask 0 there).

    >>> pad_batch({"input_ids": [[101, 7, 102], [101, 102]], "attention_mask": [[1, 1, 1], [1, 1]]}, [1, 0], 0)
    {'input_ids': tensor([[101, 102,   0],
            [101,   7, 102]]), 'attention_mask': tensor([[1, 1, 0],
            [1, 1, 1]])}
    """
    longest = max(len(features["input_ids"][i]) for i in rows)
    out = {}
    for key, values in features.items():
        fill = pad_id if key == "input_ids" else 0  # masks and token types are 0 on padding
        out[key] = torch.tensor([values[i] + [fill] * (longest - len(values[i])) for i in rows])  # (B, L)
    return out


def run_sorted(
    features: Mapping[str, list],
    fn: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
    pad_id: int,
    batch_size: int = 32,
    show_progress: bool | None = None,
    device: torch.device | str = "cpu",
    desc: str = "encoding",
) -> np.ndarray:
    """``fn(batch)`` over tokenized ``features`` in batches of similar length, as float32 rows in input order.

    Sort by token count, longest first; pad each batch to its own longest row; run under
    ``torch.inference_mode()``; restore the order. A progress bar (labelled ``desc``) shows from
    ``PROGRESS_MIN`` rows on unless ``show_progress`` says otherwise. It is tqdm's text bar, not its notebook
    widget: a saved notebook keeps a widget's first frame ("0%") but a text bar's last one.
    """
    from tqdm import tqdm

    n = len(features["input_ids"])
    if n == 0:
        raise ValueError("nothing to run: features holds no rows.")
    order = sorted(range(n), key=lambda i: -len(features["input_ids"][i]))  # longest first
    show = n >= PROGRESS_MIN if show_progress is None else show_progress
    chunks = []
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch", disable=not show, mininterval=2.0):
            batch = pad_batch(features, order[start : start + batch_size], pad_id)
            chunks.append(fn({k: v.to(device) for k, v in batch.items()}).float().cpu().numpy())  # (b, ...)
    out = np.empty((n, *chunks[0].shape[1:]), dtype=np.float32)
    out[order] = np.concatenate(chunks)  # back to the order given
    return out


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Run the block with ``model`` in eval mode (no dropout), then put it back in the mode it was in.

    >>> layer = torch.nn.Dropout().train()
    >>> with eval_mode(layer):
    ...     layer.training
    False
    >>> layer.training
    True
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
