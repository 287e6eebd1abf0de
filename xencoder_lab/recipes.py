"""Named recipes for the course checkpoints: one command trains each, with the code the notebooks show.

    python -m xencoder_lab.recipes bi-encoder              # writes data/checkpoints/bi-encoder/
    python -m xencoder_lab.recipes cross-encoder-first-stage   # a new head over the bi-encoder (a GPU's job)
    python -m xencoder_lab.recipes cross-encoder           # trains on from the first stage, on a CPU
    python -m xencoder_lab.recipes query-tower             # the query tower alone, the documents frozen
    python -m xencoder_lab.recipes small-cross-encoder     # 2 layers, 128 tokens, distilled from the cross-encoder
    python -m xencoder_lab.recipes distilled-bi-encoder    # a query tower taught by the cross-encoder (KL)
    python -m xencoder_lab.recipes poly-encoder            # 16 codes, LoRA on the top 3 layers
    python -m xencoder_lab.recipes colbert                 # 128-d token vectors, LoRA on the top 3 layers

A recipe is its settings plus the code that uses them. Each manifest keeps the settings, the trained model's
outputs on fixed inputs (``checkpoints.probe_outputs``) and the first losses of its training loop on the toy
set (``training_probe``); ``verify`` checks all three against the current code (``course_models.verify``, with
the recipe's training probe), and a test runs it on every committed checkpoint. The settings live in
``settings``; what each recipe trains on, in ``recipe_data``; how it trains, in ``recipe_training``; loading a
checkpoint, in ``course_models``. This module runs a recipe, measures what it made and stores it. Choices are
made on a validation split carved from SciFact train; the test split is only measured, for the manifest.

Built in notebook 03 (the fine-tuned bi-encoder and the query tower); the cross-encoder recipe belongs to
notebook 04, the two distilled students to notebook 06, the poly-encoder to 07 and ColBERT to 08. The
bi-encoder and cross-encoder recipes hold out 80 training claims at random; the others hold them out by
document (``protocol.split_validation_by_document``), and the query tower and the two distilled students keep
their best evaluation by them. The poly-encoder and ColBERT train LoRA adapters (``models.add_lora``) on the
bi-encoder recipe's pairs and hard negatives, so their checkpoints store under a megabyte.

``--set KEY=VALUE --record`` trains a single-model recipe with a setting changed and adds its figures, not its
weights, to ``variants.json`` beside the checkpoint (notebook 06 compares hard negatives with in-batch negatives
only, and the distillation losses, this way; notebook 07 the number of codes; notebook 03 the query tower with
label-free queries from the corpus).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import time
from pathlib import Path

import torch

from . import checkpoints, course_models, metrics, protocol, recipe_data
from .bi_encoder import BiEncoder
from .course_models import StaleCheckpointError, load_bi_encoder, load_cross_encoder
from .cross_encoder import rerank, score_candidates
from .data import load_beir
from .recipe_training import (
    TRAINING_PROBES,
    cross_encoder_training_probe,
    train_bi_encoder_recipe,
    train_colbert_recipe,
    train_cross_encoder_recipe,
    train_distilled_bi_encoder_recipe,
    train_poly_encoder_recipe,
    train_query_tower_recipe,
    train_small_cross_encoder_recipe,
)
from .retrieval import dense_run
from .settings import CROSS_ENCODER_FIRST_STAGE, SETTINGS, EveryLengthRecipe, Recipe, SmallCrossEncoderRecipe

RECIPES = {name: {"settings": SETTINGS[name], "training_probe": probe} for name, probe in TRAINING_PROBES.items()}
RECIPES["cross-encoder-first-stage"] = {  # its manifest is committed, not its weights (``settings.EveryLengthRecipe``)
    "settings": CROSS_ENCODER_FIRST_STAGE,
    "training_probe": lambda: cross_encoder_training_probe(CROSS_ENCODER_FIRST_STAGE)}


def verify(name: str, folder: str | Path | None = None, training: bool = True) -> dict:
    """``course_models.verify`` with the recipe's own training probe (``training=False`` skips that check, the
    slowest); returns the manifest or raises ``StaleCheckpointError``.

    Args:
        name: the recipe, one of ``RECIPES``.
        folder: the checkpoint folder (default ``data/checkpoints/<name>``).
        training: also check the training loop's first losses.

    Returns:
        the checkpoint's manifest.

    Raises:
        StaleCheckpointError: the current code or settings would not make the checkpoint again.
        FileNotFoundError: there is no checkpoint in the folder.
    """
    return course_models.verify(name, folder, RECIPES[name]["training_probe"] if training else None,
                                RECIPES[name]["settings"])


def _manifest(name: str, steps: int | None, trained: Recipe | None = None, **extra) -> dict:
    """A checkpoint's manifest: the recipe's settings, and the steps ``trained`` (the run's own settings) took."""
    return {
        "recipe": name,
        "command": f"python -m xencoder_lab.recipes {name}" + (f" --steps {steps}" if steps else ""),
        "settings": RECIPES[name]["settings"].asdict(),
        "steps": steps or (trained or RECIPES[name]["settings"]).steps,
        "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _bi_encoder(args, out: Path, training_probe: list[float], name: str, settings: Recipe) -> dict:
    """Train recipe ``name`` (``bi-encoder``, ``query-tower`` or ``distilled-bi-encoder``) with ``settings``,
    measure it with the zero-shot model on validation and the three columns of ``protocol.columns``, and store
    its query tower's trained layers (or, with ``--record``, only its figures: ``_record``)."""
    start = time.perf_counter()
    train_recipe = {"bi-encoder": train_bi_encoder_recipe, "query-tower": train_query_tower_recipe,
                    "distilled-bi-encoder": train_distilled_bi_encoder_recipe,
                    "poly-encoder": train_poly_encoder_recipe, "colbert": train_colbert_recipe}[name]
    model, trainable, log, validation = train_recipe(settings, steps=args.steps)
    train_seconds = time.perf_counter() - start
    stored = model if name in ("poly-encoder", "colbert") else model.query_tower  # the trainable names' owner
    with torch.no_grad():  # measure exactly what is stored: the fp16 weights
        for param_name, param in stored.named_parameters():
            if param_name in trainable:
                param.copy_(param.half().float())
    splits = {"validation": validation,
              **protocol.columns(load_beir(settings.dataset, "test"), load_beir(settings.dataset, "train"))}

    per_query = {}  # {model: {split: {query id: nDCG@10}}}, for paired tests of a recorded variant

    def evaluate(m, label):
        runs = {split: dense_run(m, ds) for split, ds in splits.items()}
        per_query[label] = {split: {q: round(v, 6) for q, v in metrics.per_query(run, splits[split].qrels,
                                                                                  "ndcg@10").items()}
                            for split, run in runs.items()}
        return {split: metrics.evaluate(runs[split], ds.qrels) for split, ds in splits.items()}

    extra = {"best_step": log[-1]["best_step"]} if "best_step" in log[-1] else {}
    what = {"poly-encoder": "LoRA updates of the top layers and the codes, fp16",
            "colbert": "LoRA updates of the top layers and the projection, fp16"}.get(name,
                                                                                       "query_tower top layers, fp16")
    manifest = _manifest(
        name, args.steps, settings, train_seconds=round(train_seconds), stored=what, **extra,
        metrics={"fine-tuned": evaluate(model, "fine-tuned"), "zero-shot": evaluate(BiEncoder(), "zero-shot")}, log=log,
        probe=checkpoints.probe_outputs(model), training_probe=training_probe,
        data_probe=None if args.record else recipe_data.data_digest(name, settings),
    )
    manifest["total_seconds"] = round(time.perf_counter() - start)
    if args.record:
        return _record(name, settings, {**manifest, "per_query": per_query}, args.overwrite)
    checkpoints.save_checkpoint(stored, trainable, manifest, out, overwrite=args.overwrite)
    return manifest


def _record(name: str, settings: Recipe, manifest: dict, overwrite: bool) -> dict:
    """Add a run with changed settings to ``data/checkpoints/<name>/variants.json``: the change, the command,
    the figures (with nDCG@10 per query, when the manifest has them, for paired tests: ``checkpoints.variants``),
    the seconds and, for a recipe that keeps its best step, that step and its validation nDCG@10 (no weights).
    A run already recorded with the same change is kept unless ``overwrite``."""
    path = checkpoints.CHECKPOINTS / name / "variants.json"
    own = RECIPES[name]["settings"].asdict()
    changed = {k: v for k, v in settings.asdict().items() if own[k] != v}
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    if any(run["changed"] == changed for run in runs) and not overwrite:
        raise FileExistsError(f"{path} already records a run with {changed}: pass --overwrite to replace it.")
    command = manifest["command"] + "".join(f" --set {shlex.quote(f'{k}={json.dumps(v)}')}"
                                            for k, v in changed.items()) + " --record"
    best = manifest.get("log", [{}])[-1]  # a recipe that keeps its best step ends its log with it
    run = {"changed": changed, "command": command, "steps": manifest["steps"], "metrics": manifest["metrics"],
           "train_seconds": manifest["train_seconds"], "hardware": manifest["hardware"],
           **({"best step": best["best_step"], "validation": best["validation"]} if "best_step" in best else {}),
           **({"ndcg@10 per query": manifest["per_query"]} if manifest.get("per_query") else {})}
    runs = [r for r in runs if r["changed"] != changed] + [run]
    about = (f"Runs of the {name} recipe with one setting changed, measured like its checkpoint; each was made by "
             "its command. No weights are kept.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"about": about, "runs": runs}, indent=1) + "\n")
    return run


def _cross_encoder_first_stage(args, out: Path, training_probe: list[float]) -> dict:
    """Train the first stage, keeping the best model by validation nDCG@10 on disk as it goes (``"complete":
    false`` until the end), then measure the kept model on SciFact test."""
    name, settings = "cross-encoder-first-stage", CROSS_ENCODER_FIRST_STAGE
    start, best = time.perf_counter(), {"value": -1.0, "step": 0}
    init = checkpoints.weights_digest(checkpoints.CHECKPOINTS / settings.init)

    def keep_best(model, step, value, log):
        if value > best["value"]:
            best.update(value=value, step=step)
            trainable = [n for n, p in model.named_parameters() if p.requires_grad]
            manifest = _manifest(
                name, args.steps, complete=False, best_step=step, log=log, init=init,
                training_probe=training_probe,
                train_seconds=round(time.perf_counter() - start), stored="encoder top layers, head, scale; fp16",
            )
            checkpoints.save_checkpoint(model, trainable, manifest, out, overwrite=True)

    _, _, log = train_cross_encoder_recipe(settings, steps=args.steps, on_evaluate=keep_best)
    manifest = checkpoints.read_manifest(out)
    model = load_cross_encoder(out)
    bi = load_bi_encoder()
    test = load_beir(settings.dataset, "test")
    first = dense_run(bi, test)
    depth = settings.rerank_depth
    scores = score_candidates(model, test, [first], depth)
    manifest.update(
        complete=True,
        log=log,
        probe=checkpoints.probe_outputs(model),
        data_probe=recipe_data.data_digest(name, settings),
        total_seconds=round(time.perf_counter() - start),
        metrics={
            "validation ndcg@10 (best)": best["value"],
            f"test: bi-encoder top {depth}": metrics.evaluate(first, test.qrels),
            f"test: bi-encoder top {depth} -> cross-encoder": metrics.evaluate(
                rerank(first, scores, depth), test.qrels),
        },
    )
    checkpoints.write_manifest(out, manifest)
    return manifest


def second_stage(settings: EveryLengthRecipe, out: str | Path, command: str, training_probe: list[float],
                 overwrite: bool = False) -> dict:
    """Train the cross-encoder's second stage with ``settings`` from its ``init`` checkpoint and store the model
    its last step leaves: the steps are the recipe's, and validation before and after is logged, not used to
    choose (SciFact's validation claims hold none of the short documents the stage trains for).

    Args:
        settings: the recipe's settings (``settings.CROSS_ENCODER``), or a lever study's variant of them.
        out: the checkpoint folder to write.
        command: the command line that made it, for the manifest.
        training_probe: the recipe's training probe, computed before training starts.
        overwrite: replace an existing checkpoint (the old one moves aside, as ``checkpoints.save_checkpoint``).

    Returns:
        the manifest written.
    """
    data_probe = recipe_data.data_digest("cross-encoder", settings)
    start = time.perf_counter()
    model, trainable, log = train_cross_encoder_recipe(settings)
    train_seconds = round(time.perf_counter() - start)
    with torch.no_grad():  # the probe of exactly what is stored: the fp16 weights
        for name, param in model.named_parameters():
            if name in trainable:
                param.copy_(param.half().float())
    manifest = {
        "recipe": "cross-encoder", "command": command, "settings": settings.asdict(), "steps": settings.steps,
        "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "init": checkpoints.weights_digest(checkpoints.CHECKPOINTS / settings.init),
        "train_seconds": train_seconds, "stored": "encoder layers, head, scale; fp16",
        "log": log, "probe": checkpoints.probe_outputs(model), "training_probe": training_probe,
        "data_probe": data_probe,
    }
    checkpoints.save_checkpoint(model, trainable, manifest, out, overwrite=overwrite)
    return manifest


def _small_cross_encoder(args, out: Path, training_probe: list[float], settings: SmallCrossEncoderRecipe) -> dict:
    """Distil, store the best student by validation (or, with ``--record``, only its figures: ``_record``), and
    measure it on the three columns: reranking the fine-tuned bi-encoder's top ``test_depth``, beside that first
    stage and the teacher."""
    start = time.perf_counter()
    model, trainable, log, validation = train_small_cross_encoder_recipe(settings, steps=args.steps)
    train_seconds = time.perf_counter() - start
    with torch.no_grad():  # measure exactly what is stored: the fp16 weights
        for name, param in model.named_parameters():
            if name in trainable:
                param.copy_(param.half().float())
    bi = load_bi_encoder(checkpoints.CHECKPOINTS / settings.miner)
    teacher = load_cross_encoder(checkpoints.CHECKPOINTS / settings.teacher)
    depth = settings.test_depth
    results = {}
    for column, ds in protocol.columns(load_beir(settings.dataset, "test"),
                                       load_beir(settings.dataset, "train")).items():
        first = dense_run(bi, ds, k=depth)
        results[column] = {"bi-encoder": metrics.evaluate(first, ds.qrels)}
        for label, m in (("teacher", teacher), ("student", model)):
            scores = score_candidates(m, ds, [first], depth)
            results[column][f"bi-encoder top {depth} -> {label}"] = metrics.evaluate(rerank(first, scores, depth),
                                                                                    ds.qrels)
    manifest = _manifest(
        "small-cross-encoder", args.steps, settings, train_seconds=round(train_seconds),
        best_step=log[-1]["best_step"], stored="encoder layers, head, scale; fp16", metrics=results, log=log,
        probe=checkpoints.probe_outputs(model), training_probe=training_probe,
        data_probe=None if args.record else recipe_data.data_digest("small-cross-encoder", settings),
    )
    manifest["total_seconds"] = round(time.perf_counter() - start)
    if args.record:
        return _record("small-cross-encoder", settings, manifest, args.overwrite)
    checkpoints.save_checkpoint(model, trainable, manifest, out, overwrite=args.overwrite)
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Train, record or verify a course checkpoint: ``python -m xencoder_lab.recipes RECIPE [options]``.

    Args:
        argv: the command line's arguments, e.g. ``["bi-encoder", "--verify"]``; None: ``sys.argv[1:]``.

    Returns:
        the new checkpoint's manifest (with ``--record``, the run's figures); None with ``--verify``.

    Raises:
        SystemExit: bad arguments, an existing checkpoint without ``--overwrite``, or a stale one with
            ``--verify``.
    """
    parser = argparse.ArgumentParser(description="Train a course checkpoint.")
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, help="folder to write (default: data/checkpoints/<recipe>)")
    parser.add_argument("--steps", type=int, help="override the recipe's steps (for a quick trial)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    parser.add_argument("--verify", action="store_true", help="check the checkpoint against the current code")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a setting (converted to its type, e.g. lr=1e-4, negative_depth=null); "
                             "needs --record")
    parser.add_argument("--record", action="store_true",
                        help="store no weights: add the run's figures to data/checkpoints/<recipe>/variants.json")
    args = parser.parse_args(argv)
    settings = RECIPES[args.recipe]["settings"]
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            settings = settings.replace(**{key: value})  # JSON, None/True/False or text, as the field's type
        except ValueError as err:
            parser.error(f"--set {item} ({args.recipe}): {err}")
    if args.set and not args.record:
        parser.error("--set changes a recipe: add --record (a checkpoint is made by the recipe's own settings).")
    recordable = ("bi-encoder", "query-tower", "distilled-bi-encoder", "small-cross-encoder", "poly-encoder",
                  "colbert")
    if args.record and args.recipe not in recordable:
        parser.error(f"--record is for {', '.join(recordable)}, not {args.recipe}.")
    if args.verify:
        try:
            verify(args.recipe, args.out)
        except (StaleCheckpointError, FileNotFoundError) as err:
            parser.exit(1, f"{err}\n")
        print(f"{args.recipe}: the current code reproduces its settings, outputs and training losses")
        return None
    out = args.out or checkpoints.CHECKPOINTS / args.recipe
    if out.exists() and not args.overwrite and not args.record:
        parser.error(f"{out} exists: pass --overwrite to replace it (the old one moves to {out.name}.previous).")
    if args.recipe == "cross-encoder" and args.steps:
        parser.error("--steps: the second stage runs its recipe's steps (benchmarks/cross_encoder_levers/"
                     "every_length.py trains it with a setting changed).")
    training_probe = RECIPES[args.recipe]["training_probe"]()  # first: the code may be edited during a long run
    if args.recipe == "cross-encoder-first-stage":
        result = _cross_encoder_first_stage(args, out, training_probe)
    elif args.recipe == "cross-encoder":
        result = second_stage(RECIPES["cross-encoder"]["settings"], out, "python -m xencoder_lab.recipes "
                              "cross-encoder", training_probe, args.overwrite)
    elif args.recipe == "small-cross-encoder":
        result = _small_cross_encoder(args, out, training_probe, settings)
    else:
        result = _bi_encoder(args, out, training_probe, args.recipe, settings)
    print(f"recorded in {out / 'variants.json'}" if args.record else f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
