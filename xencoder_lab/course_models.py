"""The course's trained models: load each checkpoint and check it against the current code (notebooks 03-09).

Everything that serves a course model (the pipeline's users, ``cli``, ``pair_scores``, ``corpus_embeddings``, the
benchmarks) loads it from here; nothing here trains. ``recipes`` trains the checkpoints with the settings of
``settings`` and the same model builders (``poly_encoder``, ``colbert``).

A checkpoint is *stale* when the current code would not make it again: its recipe's settings changed, or the
loaded model no longer reproduces the outputs stored in its manifest (``checkpoints.probe_outputs``), or, when a
``training_probe`` is given (``recipes.verify`` gives the recipe's own), the training loop no longer reproduces
the first losses that made it.

>>> model = load("bi-encoder")                 # the fine-tuned bi-encoder, from data/checkpoints/bi-encoder
>>> model.encode_queries(["Vitamin D lowers the risk of tuberculosis."]).shape
(1, 384)
>>> verify("bi-encoder")["settings"] == SETTINGS["bi-encoder"].asdict()   # the manifest keeps the recipe's
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import checkpoints
from .bi_encoder import BiEncoder
from .colbert import ColBERT
from .cross_encoder import CrossEncoder, small_cross_encoder
from .models import add_lora
from .poly_encoder import PolyEncoder
from .settings import CROSS_ENCODER, CROSS_ENCODERS, SETTINGS, ColBERTRecipe, PolyEncoderRecipe, Recipe


class StaleCheckpointError(RuntimeError):
    """A committed checkpoint that the current code or settings would not make again."""


def _folder(folder, default: str) -> Path:
    """The checkpoint folder: ``folder`` itself, a recipe name (``"query-tower"``), or the course's ``default``."""
    folder = Path(folder or checkpoints.CHECKPOINTS / default)
    if not folder.exists() and str(folder) in SETTINGS:
        folder = checkpoints.CHECKPOINTS / str(folder)
    return folder


def poly_encoder(settings: PolyEncoderRecipe, device=None) -> tuple[PolyEncoder, list[str]]:
    """The recipe's poly-encoder before training: the base model with LoRA on its query tower's top layers and
    ``codes`` codes near zero; returns ``(model, names of the LoRA parameters)``."""
    model = PolyEncoder(codes=settings.codes, scale=settings.scale, max_length=settings.max_length,
                        init_std=settings.init_std, seed=settings.seed, device=device)
    names = add_lora(model.query_tower, settings.lora_rank, settings.train_top_layers)
    return model, ["query_tower." + n for n in names]


def colbert(settings: ColBERTRecipe, device=None) -> tuple[ColBERT, list[str]]:
    """The recipe's ColBERT before training: the base model with LoRA on its top layers and a ``dim``-wide
    projection; returns ``(model, names of the LoRA parameters)``."""
    model = ColBERT(dim=settings.dim, query_length=settings.query_length, max_length=settings.max_length,
                    augment=settings.augment, seed=settings.seed, device=device)
    lora = ["tower." + n for n in add_lora(model.tower, settings.lora_rank, settings.train_top_layers)]
    model.to(model.device)
    return model, lora


def load_bi_encoder(folder: str | Path | None = None, device=None) -> BiEncoder:
    """The course's fine-tuned bi-encoder: the base model with the checkpoint's top layers laid over it.

    Args:
        folder: a checkpoint folder or a recipe name (``"query-tower"``); default the ``bi-encoder`` checkpoint.
        device: where to run it (default: ``models.get_device()``).

    Returns:
        a ``BiEncoder``; a checkpoint trained with the document tower frozen loads as two towers, the document
        tower the base model's.
    """
    folder = _folder(folder, "bi-encoder")
    settings = checkpoints.read_manifest(folder)["settings"]
    shared = settings.get("document_tower") != "frozen"
    model = BiEncoder(pooling=settings["pooling"], max_length=settings["max_length"], shared=shared, device=device)
    checkpoints.load_weights(model.query_tower, folder)
    return model


def load_cross_encoder(folder: str | Path | None = None, device=None) -> CrossEncoder:
    """The course cross-encoder: the base model with the checkpoint's layers, head and scale laid over it.

    Args:
        folder: a checkpoint folder or a recipe name (``"small-cross-encoder"``); default ``cross-encoder``.
        device: where to run it (default: ``models.get_device()``).

    Returns:
        a ``CrossEncoder``; a student checkpoint (its settings name ``layers``) loads as the base model cut to
        that many layers (``cross_encoder.small_cross_encoder``).
    """
    folder = _folder(folder, "cross-encoder")
    settings = checkpoints.read_manifest(folder)["settings"]
    scale = settings.get("cosine_scale", CROSS_ENCODER.cosine_scale)
    model = CrossEncoder(max_length=settings["max_length"], cosine_scale=scale, device=device)
    if "layers" in settings:
        model = small_cross_encoder(model, settings["layers"], settings["max_length"])
    return checkpoints.load_weights(model, folder)


def load_poly_encoder(folder: str | Path | None = None, device=None) -> PolyEncoder:
    """The course poly-encoder: the base model, its LoRA updates and codes laid over it (``folder`` defaults to
    the ``poly-encoder`` checkpoint).

    Args:
        folder: a checkpoint folder or a recipe name; default the ``poly-encoder`` checkpoint.
        device: where to run it (default: ``models.get_device()``).

    Returns:
        a ``PolyEncoder`` in eval mode.
    """
    folder = _folder(folder, "poly-encoder")
    model, _ = poly_encoder(PolyEncoderRecipe.from_dict(checkpoints.read_manifest(folder)["settings"]), device)
    model.to(model.device).eval()
    return checkpoints.load_weights(model, folder)


def load_colbert(folder: str | Path | None = None, device=None) -> ColBERT:
    """The course ColBERT: the base model, its LoRA updates and projection (``folder``: default the checkpoint).

    Args:
        folder: a checkpoint folder or a recipe name; default the ``colbert`` checkpoint.
        device: where to run it (default: ``models.get_device()``).

    Returns:
        a ``ColBERT`` in eval mode.
    """
    folder = _folder(folder, "colbert")
    model, _ = colbert(ColBERTRecipe.from_dict(checkpoints.read_manifest(folder)["settings"]), device)
    return checkpoints.load_weights(model.eval(), folder)


def load(name: str, folder: str | Path | None = None, device=None):
    """The course checkpoint of recipe ``name`` (from ``folder``, default its own), with the loader it needs.

    Args:
        name: a recipe name, one of ``settings.SETTINGS``.
        folder: the checkpoint folder (default ``data/checkpoints/<name>``).
        device: where to run it.

    Returns:
        a ``BiEncoder``, ``CrossEncoder``, ``PolyEncoder`` or ``ColBERT``.
    """
    if name not in SETTINGS:
        raise ValueError(f"unknown course model {name!r}: use one of {', '.join(SETTINGS)}.")
    default = load_cross_encoder if name in CROSS_ENCODERS else load_bi_encoder
    loader = {"poly-encoder": load_poly_encoder, "colbert": load_colbert}.get(name, default)
    return loader(folder or checkpoints.CHECKPOINTS / name, device=device)


def verify(name: str, folder: str | Path | None = None,
           training_probe: Callable[[], list[float]] | None = None, settings: Recipe | None = None) -> dict:
    """Check the checkpoint of recipe ``name`` against the current code.

    Args:
        name: a recipe name, one of ``settings.SETTINGS``.
        folder: the checkpoint folder (default ``data/checkpoints/<name>``).
        training_probe: the recipe's training probe (``recipes.RECIPES[name]["training_probe"]``); when given,
            the first losses of the training loop on the toy set must match the manifest's too.
        settings: the recipe's settings, for a recipe outside ``SETTINGS`` (the cross-encoder's first stage).

    Returns:
        the checkpoint's manifest.

    Raises:
        StaleCheckpointError: saying what differs (settings, outputs, training losses) and the command that
            retrains it.
    """
    folder = Path(folder or checkpoints.CHECKPOINTS / name)
    manifest = checkpoints.read_manifest(folder)
    fix = f"retrain it with `python -m xencoder_lab.recipes {name} --overwrite` (see the README)"
    problems = []
    stored, own = manifest["settings"], (settings or SETTINGS[name]).asdict()
    if stored != own:
        changed = sorted(k for k in {**stored, **own} if stored.get(k) != own.get(k))
        problems.append(f"the recipe's settings changed ({', '.join(changed)})")
    model = load_cross_encoder(folder, device="cpu") if name not in SETTINGS else load(name, folder, device="cpu")
    if "probe" not in manifest or "training_probe" not in manifest:
        problems.append("its manifest holds no probes (a run that did not finish?)")
    else:
        if not checkpoints.close_enough(manifest["probe"], checkpoints.probe_outputs(model)):
            problems.append("the current code computes other outputs from its weights (pooling, text, truncation "
                            "or score changed)")
        if training_probe is not None and not checkpoints.close_enough(manifest["training_probe"], training_probe()):
            problems.append("the training loop computes other losses than the one that trained it")
    if problems:
        raise StaleCheckpointError(f"{folder.name} is stale: {'; '.join(problems)}. To fix: {fix}.")
    return manifest
