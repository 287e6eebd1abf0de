"""Saving and loading models: course checkpoints pinned by what they compute, and whole models (notebook 03).

A course checkpoint lives in ``data/checkpoints/<recipe>/``:

- ``weights.safetensors``: only the tensors training changed (e.g. the top layers), in fp16;
- ``manifest.json``: the recipe and its settings, steps, wall time, hardware, the loss log, the metrics
  measured on the stored (fp16) weights, and two probes of behaviour (``course_models.verify`` checks both):
  ``probe``, the model's outputs on a few fixed inputs (``probe_outputs``), and ``training_probe``, the first
  losses of the recipe's training loop on the toy set.

Loading rebuilds the base model and lays the stored tensors over it. A checkpoint is stale when its recipe's
settings changed, when the current code no longer reproduces its outputs (pooling, document text, truncation,
the score), or when the training loop no longer computes the same losses. A refactor that keeps all three
does not force a retrain; a changed comment or error message never does.

``save_model`` and ``load_model`` write and read a plain ``BiEncoder`` or ``CrossEncoder`` in full (a
poly-encoder or ColBERT is stored as a course checkpoint, its trained tensors over the base model).

>>> close_enough([[1.0, 2.0]], [[1.0, 2.00001]])
True
>>> close_enough([[1.0, 2.0]], [[1.0, 2.1]])
False
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .assets import CHECKPOINTS  # noqa: F401 (re-exported) in a wheel or in the repository: see assets
from .cache import atomic_folder, atomic_write
from .data import document_text

MAX_BYTES = 25 * 2**20  # per checkpoint; 60 MB for all of them together

# Fixed inputs for ``probe_outputs``: a claim, a question, a title-only document, a document far longer than
# any model reads, and a query longer than half of the cross-encoder's budget (so truncation is pinned too).
PROBE_QUERIES = [
    "Vitamin D deficiency is associated with a higher risk of tuberculosis.",
    "Which drugs lower blood pressure in older adults?",
    " ".join(["Long-term aspirin use and colorectal cancer risk in a cohort of nurses followed for decades"] * 12),
]
PROBE_DOCUMENTS = [
    {"title": "Vitamin D and tuberculosis", "text": "Low serum vitamin D was linked to active tuberculosis in a "
     "meta-analysis of seven case-control studies."},
    {"title": "Antihypertensive treatment in the very elderly", "text": ""},
    {"title": "", "text": " ".join(["Aspirin reduced the incidence of colorectal adenomas in this trial."] * 60)},
]


def close_enough(stored, current, tolerance: float = 1e-3) -> bool:
    """True when ``current`` matches ``stored`` to ``tolerance`` times the stored values' largest magnitude.

    fp16 weights and float32 sums on another CPU move outputs by about 1e-6 of their scale; a changed pooling,
    text or score moves them by far more.
    """
    stored, current = np.asarray(stored, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if stored.shape != current.shape:
        return False
    return bool(np.abs(stored - current).max() <= tolerance * max(1.0, np.abs(stored).max()))


def probe_outputs(model) -> list[list[float]]:
    """The model's outputs on the fixed probe inputs: a bi-encoder's query-document scores (3, 3) and the
    first 8 dimensions of each document embedding; a cross-encoder's logits for every (query, document) pair;
    ColBERT's MaxSim scores (3, 3) and the first 8 dimensions of the first three token vectors.
    """
    from .bi_encoder import BiEncoder
    from .colbert import ColBERT, maxsim, pad_documents
    from .cross_encoder import CrossEncoder

    docs = [document_text(doc) for doc in PROBE_DOCUMENTS]
    if isinstance(model, BiEncoder):
        q_emb, d_emb = model.encode_queries(PROBE_QUERIES), model.encode_documents(docs)  # (3, D), (3, D)
        scores = model.score(q_emb, d_emb)  # (3, 3): dot products, or a poly-encoder's scores
        return np.round(np.concatenate([scores, d_emb[:, :8]], axis=1).astype(float), 6).tolist()  # (3, 11)
    if isinstance(model, CrossEncoder):
        logits = model.score([q for q in PROBE_QUERIES for _ in docs], docs * len(PROBE_QUERIES))  # (9,)
        return np.round(logits.reshape(len(PROBE_QUERIES), len(docs)).astype(float), 5).tolist()  # (3, 3)
    if isinstance(model, ColBERT):
        vectors, lengths = model.encode_documents(docs)  # (T, dim), (3,)
        scores = maxsim(torch.from_numpy(model.encode_queries(PROBE_QUERIES)), pad_documents(vectors, lengths))
        return np.round(np.concatenate([scores.numpy(), vectors[:3, :8].astype(float)], axis=1), 5).tolist()  # (3, 11)
    raise TypeError(f"no probe for a {type(model).__name__}: give a BiEncoder, a CrossEncoder or a ColBERT.")


INT8_INSTRUCTIONS = ("avx2", "avx512_vnni", "avx_vnni", "amx_int8")  # x86 flags that pick ONNX Runtime's int8 kernels


def hardware() -> dict:
    """What a run ran on, for the manifest; ``int8 instructions``: which of ``INT8_INSTRUCTIONS`` the CPU has (Linux
    only: empty elsewhere), since int8 results can round otherwise on a CPU with other ones (``runtime``)."""
    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    return {
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "int8 instructions": [flag for flag in INT8_INSTRUCTIONS if flag in flags],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(
    module: torch.nn.Module,
    names: Sequence[str],
    manifest: dict,
    folder: str | os.PathLike,
    overwrite: bool = False,
) -> Path:
    """Store the parameters ``names`` of ``module`` in fp16 and ``manifest`` in ``folder``.

    The folder is written in full under a temporary name and then renamed, so it is never half-written.
    An existing checkpoint is kept unless ``overwrite=True``; then it is moved to ``<folder>.previous``, and its
    ``variants.json`` (the recorded runs of the recipe, ``recipes --record``) is copied into the new folder: those
    runs did not come from the old weights. Files made from the old weights (``pairs.npz``) stay behind.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already holds a checkpoint: pass overwrite=True (it moves to .previous).")
    state = module.state_dict()
    missing = [n for n in names if n not in state]
    if missing:
        raise KeyError(f"not parameters of this module: {missing[:3]}")
    tensors = {n: state[n].detach().to("cpu", torch.float16).contiguous() for n in names}
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    if size > MAX_BYTES:
        raise ValueError(f"{size / 2**20:.1f} MB is over the {MAX_BYTES / 2**20:.0f} MB a course checkpoint may take.")
    with atomic_folder(folder, keep_previous=True) as tmp:
        save_file(tensors, str(tmp / "weights.safetensors"))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if (folder / "variants.json").exists():
            (tmp / "variants.json").write_bytes((folder / "variants.json").read_bytes())
    return folder


def load_weights(module: torch.nn.Module, folder: str | os.PathLike) -> torch.nn.Module:
    """Lay the tensors stored in ``folder`` over ``module`` (in its own dtype and device); return it.

    Args:
        module: the model (or tower) to update in place; tensors it has that the checkpoint lacks stay as they are.
        folder: a checkpoint folder holding ``weights.safetensors``.

    Returns:
        ``module`` itself.

    Raises:
        ValueError: a stored tensor that ``module`` lacks or holds in another shape.
    """
    stored = load_file(str(Path(folder) / "weights.safetensors"))
    state = module.state_dict()
    unknown = [n for n in stored if n not in state or state[n].shape != stored[n].shape]
    if unknown:
        raise ValueError(f"{folder} does not fit this model (e.g. {unknown[0]}): was it made from another base model?")
    with torch.no_grad():
        for name, tensor in stored.items():
            state[name].copy_(tensor.to(state[name].dtype))
    return module


def save_arrays(arrays: dict[str, np.ndarray], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a course artifact made beside a checkpoint (e.g. ``pair_scores``): named arrays, a JSON ``meta``
    among them, in one compressed ``.npz``. An existing file is replaced only with ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True (or --overwrite) to replace it.")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    return atomic_write(path, write)


def load_arrays(path: str | os.PathLike, command: str) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a file ``save_arrays`` wrote; a missing file's error names the ``command`` that
    makes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"nothing at {path}: make it with `{command}`.")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def artifact_arguments(
    argv: list[str] | None, description: str, path: Path, check: str, models: Sequence[str] = (),
    others: Sequence[tuple[str, Path, str]] = (),
) -> argparse.Namespace:
    """The command line of a course artifact's maker (``--out``, ``--overwrite``, ``--check``, and ``--model`` when
    ``models`` names the checkpoints it can be made for: the file then goes beside that checkpoint, under
    ``path``'s name); exits with a clear message if ``--out`` exists and neither ``--overwrite`` nor ``--check``
    is given. ``others``: ``(flag, path, help)`` of each other file the maker makes, e.g. ``("mining", ...)``:
    ``--mining`` sets ``args.mining`` and puts ``path``'s name in place of the first's (one such flag at a time)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, help=f"file to write (default: {path})")
    if models:
        parser.add_argument("--model", choices=models, default=models[0], help=f"whose file (default: {models[0]})")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument("--check", action="store_true", help=check)
    for flag, other, about in others:
        parser.add_argument(f"--{flag}", action="store_true", help=f"{about} (default --out: {other})")
    args = parser.parse_args(argv)
    chosen = [(flag, other) for flag, other, _ in others if getattr(args, flag)]
    if len(chosen) > 1:
        parser.error(f"choose one of {', '.join('--' + flag for flag, _ in chosen)}: each makes a file of its own.")
    if chosen:
        path = chosen[0][1]
    if args.out is None:
        args.out = CHECKPOINTS / args.model / path.name if models else path
    if not args.check and args.out.exists() and not args.overwrite:
        parser.error(f"{args.out} exists: pass --overwrite to replace it.")
    return args


def variants(name: str, metric: str = "ndcg@10", folder: str | os.PathLike | None = None) -> dict[str, dict]:
    """A recipe's runs with one setting changed (``variants.json`` beside its checkpoint, written by
    ``recipes --set KEY=VALUE --record``): ``{"key=value": {column: metric}}``, as each run measured them on the
    full test split (a bi-encoder on its own; the small cross-encoder reranking its first stage), plus its
    training seconds under ``"train seconds"`` and, where the run kept them, nDCG@10 per query under
    ``"per query"`` (``{"fine-tuned" or "zero-shot": {column: {query id: value}}}``, the run's model and the
    zero-shot one, for ``metrics.paired_bootstrap``).

    Args:
        name: the recipe (e.g. ``"bi-encoder"``).
        metric: the metric reported per column.
        folder: the checkpoint folder (default: ``CHECKPOINTS / name``).

    Returns:
        ``{"key=value": {column: metric value, "train seconds": float, "per query": ...}}``, one entry per run.

    Raises:
        FileNotFoundError: no variant was recorded.
    """
    path = Path(folder or CHECKPOINTS / name) / "variants.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: record a variant with "
                                f"`python -m xencoder_lab.recipes {name} --set KEY=VALUE --record`.")
    runs = json.loads(path.read_text())["runs"]

    def trained(figures: dict) -> dict:  # {column: metrics} of the run's own model: a bi-encoder or a student
        if "fine-tuned" in figures:
            return figures["fine-tuned"]
        return {column: next(m for label, m in by_label.items() if label.endswith("-> student"))
                for column, by_label in figures.items()}

    return {", ".join(f"{k}={v}" for k, v in run["changed"].items()):
            {**{column: m[metric] for column, m in trained(run["metrics"]).items()},
             "train seconds": run["train_seconds"],
             **({"per query": run["ndcg@10 per query"]} if "ndcg@10 per query" in run else {})} for run in runs}


def write_manifest(folder: str | os.PathLike, manifest: dict) -> None:
    """Replace the manifest of the checkpoint in ``folder`` (atomically), e.g. to add metrics measured later."""
    atomic_write(Path(folder) / "manifest.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=1) + "\n"))


def weights_digest(folder: str | os.PathLike) -> str:
    """sha256 of a checkpoint's weights file: recorded by checkpoints trained on top of another one."""
    return hashlib.sha256((Path(folder) / "weights.safetensors").read_bytes()).hexdigest()[:16]


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of the checkpoint in ``folder``.

    Args:
        folder: a checkpoint folder (e.g. ``CHECKPOINTS / "bi-encoder"``).

    Returns:
        the parsed ``manifest.json``: its ``"settings"``, metrics, probe outputs and the like.

    Raises:
        FileNotFoundError: the folder holds no checkpoint.
    """
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint in {folder}: train it with the command in the README.")
    return json.loads(path.read_text())


def save_model(model, folder: str | os.PathLike) -> Path:
    """Write a whole ``BiEncoder`` or ``CrossEncoder`` to ``folder`` (weights, tokenizer, settings in
    ``model.json``); ``load_model`` reads it back. The folder must not exist yet."""
    from .bi_encoder import BiEncoder
    from .cross_encoder import CrossEncoder

    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder} exists: choose a new folder (nothing a user saved is overwritten).")
    if type(model) is BiEncoder:  # a subclass (a poly-encoder) has more than its towers: refused below
        settings = {"kind": "bi-encoder", "pooling": model.pooling, "shared": model.shared,
                    "max_length": model.max_length, "normalize": model.normalize}
        towers = {"query": model.query_tower}
        if not model.shared:
            towers["document"] = model.doc_tower
    elif type(model) is CrossEncoder:
        settings = {"kind": "cross-encoder", "max_length": model.max_length, "warm_start": model.scale is not None}
        towers = {"encoder": model.encoder}
        head = {n: p.detach().cpu().contiguous() for n, p in model.state_dict().items() if not n.startswith("encoder.")}
        folder.mkdir(parents=True)
        save_file(head, str(folder / "head.safetensors"))
    else:
        raise TypeError(f"save_model writes a BiEncoder or a CrossEncoder in full, not a {type(model).__name__} (its "
                        "codes, adapters or projection would be lost): store its trained tensors with "
                        "checkpoints.save_checkpoint, as the course recipes do.")
    for name, tower in towers.items():
        tower.save_pretrained(folder / name)
        model.tokenizer.save_pretrained(folder / name)
    (folder / "model.json").write_text(json.dumps(settings, indent=1) + "\n")
    return folder


def load_model(folder: str | os.PathLike, device: torch.device | str | None = None):
    """The ``BiEncoder`` or ``CrossEncoder`` that ``save_model`` wrote to ``folder``."""
    from .bi_encoder import BiEncoder
    from .cross_encoder import CrossEncoder
    from .models import load_encoder

    folder = Path(folder)
    if not (folder / "model.json").is_file():
        raise FileNotFoundError(f"no saved model in {folder} (model.json is missing): save one with save_model.")
    settings = json.loads((folder / "model.json").read_text())
    kind = settings.pop("kind")
    if kind == "bi-encoder":
        model = BiEncoder(str(folder / "query"), device=device, **settings)
        if not model.shared:
            model.doc_tower = load_encoder(str(folder / "document"), model.device)[1]
        return model
    model = CrossEncoder(str(folder / "encoder"), max_length=settings["max_length"],
                         cosine_scale=1.0 if settings["warm_start"] else None, device=device)
    model.load_state_dict(load_file(str(folder / "head.safetensors")), strict=False)
    return model
