"""Faster inference without retraining: a course model's forward pass run by ONNX Runtime, with float32 or int8
weights (built in notebook 06).

PyTorch runs a model op by op, ready to record gradients. For serving, the same graph can be exported once to
ONNX and run by ONNX Runtime, which fuses operations (attention, layer norm, GELU) and, with **dynamic int8
quantisation**, stores each weight matrix W as int8 with a scale per output channel and quantises the activations
on the fly, batch by batch:

    W ≈ s_c · round(W / s_c),   s_c = max|W_c| / 127      one scale per output channel c ("per channel")

Only the matrix multiplications are quantised (the transformer's Linear layers, where the time goes); the word
embeddings, layer norms and softmax stay float32. Per channel matters: reranking the fine-tuned bi-encoder's top
20 for 100 SciFact test claims (nDCG@10 0.715 before, 0.770 after the float32 cross-encoder), one scale per whole
matrix gave 0.756, a quarter of the gain lost; per channel on the MatMuls, 0.779. On 2 cores, in notebook 06, the
int8 cross-encoder scores 2.0 times as many pairs a second as in PyTorch float32 (the small one 1.7 times), and the
int8 bi-encoder encodes 2.1 times as many documents (``benchmarks/rerank.py --onnx`` and ``benchmarks/encode.py
--onnx`` measure them against sentence-transformers).

Dynamic quantisation takes one activation scale per tensor, and a batch is one tensor: a pair's int8 logit then
depends on the pairs batched with it (and on their padding). Scored in batches of 32 and then alone, the small
cross-encoder's int8 logits for 6 claims' top 100 differed by up to 2.4, and the bi-encoder's int8 embeddings of 256
abstracts had cosines down to 0.991 with themselves. So an int8 copy runs each input of a batch alone, cut to its
own tokens: its logits and embeddings are each input's own, the same to the bit on one machine, and can be shipped
and checked like the float32 model's (``pair_scores``, ``corpus_embeddings``). On 2 cores that costs the small
cross-encoder about a quarter more time on 100 pairs (a p50 of 0.41 s against 0.33 s); the course cross-encoder over
10 pairs and the bi-encoder over 256 abstracts ran no slower (no padding to compute).

``accelerate(model, "int8")`` returns a copy of a ``CrossEncoder`` or ``BiEncoder`` whose ``forward`` runs the
exported graph: ``score``, ``encode_documents``, ``Pipeline`` and the rest work unchanged. It cannot be
trained (no gradients), and it records its ``backend``, which goes into every disk-cache key
(``models.backend_parts``), so its scores and embeddings never mix with the PyTorch model's.

>>> from xencoder_lab.cross_encoder import CrossEncoder
>>> model = CrossEncoder(max_length=64, cosine_scale=20.0)
>>> fast = accelerate(model, "float32")
>>> pairs = ("Aspirin prevents heart attacks.", ["Low-dose aspirin cut second heart attacks.", "Measles."])
>>> bool(abs(fast.score(*pairs) - model.score(*pairs)).max() < 1e-3), fast.backend
(True, 'onnxruntime-float32')
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
from transformers import PreTrainedModel

from .bi_encoder import BiEncoder
from .cross_encoder import CrossEncoder
from .extras import require

PRECISIONS = ("float32", "int8")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Positional(torch.nn.Module):
    """``forward(batch)`` of a course model with the batch's tensors as positional inputs, for the exporter."""

    def __init__(self, model: torch.nn.Module, call: Callable):
        super().__init__()
        self.model, self.call = model, call

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.call(self.model, {"input_ids": input_ids, "attention_mask": attention_mask,
                                      "token_type_ids": token_type_ids})


def export(model: torch.nn.Module, call: Callable, example: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write ``call(model, batch)`` as an ONNX graph to ``path``, batch size and length left free.

    ``model`` should compute attention as written out (``attn_implementation="eager"``, see ``accelerate``):
    ONNX Runtime fuses that pattern into one attention kernel; PyTorch's fused SDPA call exports as a graph it
    runs slower (``benchmarks/encode.py --docs 1000 --onnx``, 2 cores, int8 run a whole batch at a time: 1.89 times
    sentence-transformers fp32 exported from SDPA, 2.14 times from eager)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing: the graph is checked against PyTorch
        torch.onnx.export(
            _Positional(model, call).eval(), tuple(example[name] for name in INPUTS), str(path), dynamo=False,
            input_names=list(INPUTS), output_names=["output"], dynamic_axes={**axes, "output": {0: "batch"}},
            opset_version=17,
        )
    return path


def quantize(path: str | Path, out: str | Path) -> Path:
    """The graph at ``path`` with its matrix multiplications' weights in int8, one scale per output channel."""
    quantization = require("onnxruntime.quantization", "fast", "runtime.quantize")

    root = logging.getLogger()
    hush = _Drop("pre-processing before quantization")  # advice for static quantisation; this one is dynamic
    root.addFilter(hush)
    try:
        quantization.quantize_dynamic(str(path), str(out), weight_type=quantization.QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.removeFilter(hush)
    return Path(out)


class _Drop(logging.Filter):
    """Drops the log records whose message contains ``text``."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


class OnnxForward:
    """An ONNX Runtime session called like a course model's ``forward``: a batch of tensors in, a tensor out;
    ``one_by_one``: the session runs each input of the batch alone, without its padding."""

    def __init__(self, path: str | Path, threads: int | None = None, one_by_one: bool = False):
        self.one_by_one = one_by_one  # int8: see the module's docstring
        ort = require("onnxruntime", "fast", "runtime.OnnxForward")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()  # as many as PyTorch uses
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: a spinning pool takes the cores from the PyTorch first stage that
        # runs between two reranks (about 30 ms more per query in notebook 09 before this line).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        feed = {name: batch[name].detach().cpu().numpy() for name in INPUTS}
        if not self.one_by_one:
            return torch.from_numpy(self.session.run(None, feed)[0])  # (B,) logits or (B, D) embeddings
        lengths = feed["attention_mask"].sum(1)  # (B,) each row's own tokens (BERT's tokenizer pads on the right)
        rows = [self.session.run(None, {name: x[i:i + 1, :n] for name, x in feed.items()})[0]
                for i, n in enumerate(lengths.tolist())]
        return torch.from_numpy(np.concatenate(rows))  # (B,) or (B, D)


def accelerate(model, precision: str = "int8", folder: str | Path | None = None, threads: int | None = None):
    """A copy of ``model`` (``CrossEncoder`` or ``BiEncoder``) whose forward pass runs in ONNX Runtime at
    ``precision`` (``"float32"`` or ``"int8"``); the graphs go to ``folder`` (default: a new temporary folder).

    Args:
        model: a PyTorch ``CrossEncoder`` or ``BiEncoder`` (BERT family); it is not changed.
        precision: ``"float32"`` or ``"int8"`` (dynamic quantization).
        folder: where the ONNX graphs are written; None: a new temporary folder.
        threads: ONNX Runtime's intra-op threads; None: as many as PyTorch uses.

    Returns:
        a model of the same class and interface (``score`` / ``encode_*``) with ``backend`` set.

    Raises:
        TypeError: another kind of model.
        ValueError: an unknown precision, a model already accelerated, or a tokenizer without token_type_ids.
        ImportError: ONNX Runtime is not installed (the ``fast`` extra).
    """
    if not isinstance(model, (CrossEncoder, BiEncoder)):
        raise TypeError(f"accelerate takes a CrossEncoder or a BiEncoder, not a {type(model).__name__}.")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {PRECISIONS}.")
    if getattr(model, "backend", "torch") != "torch":
        raise ValueError(f"this model already runs in {model.backend}: accelerate the PyTorch model instead.")
    for module in ("onnx", "onnxruntime"):  # before any work: the exporter writes onnx's format, ORT runs it
        require(module, "fast", "runtime.accelerate")
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="xencoder-lab-onnx-"))
    source = copy.deepcopy(model).cpu().eval()  # ONNX Runtime runs on the CPU; the user's model stays as it is
    for module in source.modules():
        if isinstance(module, PreTrainedModel):
            module.set_attn_implementation("eager")  # attention as matmul + softmax, the pattern ORT fuses
    fast = copy.copy(model)  # shares the weights (for fingerprints); only forward and backend differ
    if isinstance(model, CrossEncoder):
        example = source.tokenize(["a query"], ["a document, a little longer than its query"])
        fast.forward = _session(source, lambda m, batch: m(batch), example, folder / "cross_encoder", precision,
                                threads)
    else:
        example = source.tokenize(["a text to embed", "and a second, longer one"])
        towers = {tower: _session(source, lambda m, batch, t=tower: m(batch, t), example, folder / tower, precision,
                                  threads)
                  for tower in (("query",) if model.shared else ("query", "document"))}
        fast.forward = lambda batch, tower="query": towers["query" if model.shared else tower](batch)
    fast.backend = f"onnxruntime-{precision}"
    # In the cache keys: an SDPA export (before) gave slightly other numbers, and so did int8 run a batch at a time.
    fast.graph = "eager attention" + (", one input per run" if precision == "int8" else "")
    return fast


def _session(model, call, example, stem: Path, precision: str, threads: int | None) -> OnnxForward:
    if "token_type_ids" not in example:
        raise ValueError("accelerate exports models whose tokenizer gives token_type_ids (the BERT family, as the "
                         "course's base model); this one gives none.")
    path = export(model, call, example, stem.with_suffix(".onnx"))
    if precision == "int8":
        path = quantize(path, stem.with_suffix(".int8.onnx"))
    return OnnxForward(path, threads, one_by_one=precision == "int8")
