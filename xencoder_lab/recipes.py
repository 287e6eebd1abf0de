"""Named recipes for the course checkpoints: one command trains each, with the code the notebooks show.

    python -m xencoder_lab.recipes bi-encoder              # writes data/checkpoints/bi-encoder/
    python -m xencoder_lab.recipes cross-encoder           # starts from the bi-encoder checkpoint

A recipe is its settings plus the functions that use them; ``checkpoints.fingerprint`` hashes both, so a
committed checkpoint that no longer matches its recipe is caught by a test. Choices are made on a validation
split carved from SciFact train; the test split is only measured, for the manifest.

Built in notebook 03 (the fine-tuned bi-encoder); the cross-encoder recipe belongs to notebook 04.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import numpy as np
import torch

from . import checkpoints, metrics
from .bi_encoder import BiEncoder, encode_corpus, pool
from .cross_encoder import CrossEncoder, rerank_run
from .data import document_text, load_beir, split_validation
from .losses import in_batch_negatives_loss, listwise_loss
from .negatives import mine_hard_negatives
from .retrieval import dense_run
from .training import NoDuplicatesBatchSampler, freeze_lower_layers, train_bi_encoder, train_cross_encoder

BI_ENCODER = {
    "dataset": "scifact",
    "validation_queries": 80,
    "seed": 0,
    "pooling": "mean",
    "max_length": 256,
    "train_top_layers": 3,  # embeddings and layers 0-2 frozen: faster steps, a 10 MB checkpoint
    "steps": 104,  # about two passes over the training pairs at batch 16
    "batch_size": 16,
    "lr": 5e-5,
    "warmup": 10,
    "temperature": 0.05,
    "negative_depth": 10,
    "negative_margin": 0.95,
}


def bi_encoder_training_data(model: BiEncoder, settings: dict):
    """(pairs, hard negative texts, validation split): every train judgment outside validation, one mined
    negative each (ranked by ``model``, see ``negatives.mine_hard_negatives``)."""
    train, validation = split_validation(
        load_beir(settings["dataset"], "train"), settings["validation_queries"], settings["seed"]
    )
    doc_ids = list(train.corpus)
    column = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    d_emb = encode_corpus(model, train)  # (N, D), cached
    q_emb = model.encode_queries([train.queries[qid] for qid, _ in judged])  # (P, D)
    negatives = mine_hard_negatives(
        q_emb @ d_emb.T,  # (P, N)
        positives=[column[doc_id] for _, doc_id in judged],
        relevant=[{column[d] for d in train.qrels[qid]} for qid, _ in judged],
        depth=settings["negative_depth"],
        margin=settings["negative_margin"],
        seed=settings["seed"],
    )
    pairs = [(train.queries[qid], document_text(train.corpus[doc_id])) for qid, doc_id in judged]
    return pairs, [document_text(train.corpus[doc_ids[n]]) for n in negatives], validation


def train_bi_encoder_recipe(settings: dict = BI_ENCODER, steps: int | None = None):
    """Fine-tune all-MiniLM-L6-v2 on SciFact train: ``(model, trainable parameter names, loss log, validation)``."""
    torch.manual_seed(settings["seed"])
    model = BiEncoder(pooling=settings["pooling"], max_length=settings["max_length"])
    pairs, negatives, validation = bi_encoder_training_data(model, settings)
    trainable = freeze_lower_layers(model.query_tower, settings["train_top_layers"])
    log = train_bi_encoder(
        model,
        pairs,
        steps=steps or settings["steps"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        warmup=settings["warmup"],
        temperature=settings["temperature"],
        hard_negatives=negatives,
        seed=settings["seed"],
        log_every=4,
    )
    return model, trainable, log, validation


CROSS_ENCODER = {
    "dataset": "scifact",
    "validation_queries": 80,
    "seed": 0,
    "init": "bi-encoder",  # the encoder starts from the fine-tuned bi-encoder's weights
    "max_length": 256,  # claim + the first ~230 tokens of the abstract
    "cosine_scale": 20.0,  # warm start: score = 20 * cos(query tokens, document tokens) + head([CLS])
    "train_top_layers": 6,  # all six layers (embeddings frozen): a 21 MB checkpoint
    "negatives": 15,  # per claim: the fine-tuned bi-encoder's best-ranked non-relevant abstracts
    "negative_margin": 0.95,
    "loss": "listwise",
    "steps": 1000,
    "groups_per_step": 4,  # 4 claims x (1 positive + 15 negatives) = 64 pairs a step, about 5 passes
    "lr": 5e-5,
    "head_lr": 1e-3,
    "warmup": 100,
    "rerank_depth": 20,  # validation: rerank the fine-tuned bi-encoder's top 20
    "evaluate_every": 50,
}


def cross_encoder_training_data(bi: BiEncoder, settings: dict):
    """(groups, validation split, the bi-encoder's validation run): for each train claim and relevant abstract,
    the ``negatives`` best-ranked abstracts the bi-encoder gets wrong (``mine_hard_negatives``, repeated)."""
    train, validation = split_validation(
        load_beir(settings["dataset"], "train"), settings["validation_queries"], settings["seed"]
    )
    doc_ids = list(train.corpus)
    column = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    scores = bi.encode_queries([train.queries[q] for q, _ in judged]) @ encode_corpus(bi, train).T  # (P, N)
    positives = [column[d] for _, d in judged]
    relevant = [{column[d] for d in train.qrels[q]} for q, _ in judged]
    chosen = []
    for _ in range(settings["negatives"]):  # the best remaining candidate, one round at a time
        picked = mine_hard_negatives(scores, positives, relevant, depth=1, margin=settings["negative_margin"])
        chosen.append(picked)
        scores[np.arange(len(picked)), picked] = -np.inf
    groups = [
        (train.queries[q], document_text(train.corpus[d]), [document_text(train.corpus[doc_ids[c[i]]]) for c in chosen])
        for i, (q, d) in enumerate(judged)
    ]
    return groups, validation, dense_run(bi, validation, k=settings["rerank_depth"])


def train_cross_encoder_recipe(settings: dict = CROSS_ENCODER, steps: int | None = None, on_evaluate=None):
    """Train the course cross-encoder: ``(model, trainable parameter names, log)``.

    The learning curve (validation nDCG@10 of reranking the bi-encoder's top ``rerank_depth``) is in the log.
    """
    torch.manual_seed(settings["seed"])
    bi = load_bi_encoder()
    groups, validation, first_stage = cross_encoder_training_data(bi, settings)
    model = CrossEncoder(max_length=settings["max_length"], cosine_scale=settings["cosine_scale"])
    checkpoints.load_weights(model.encoder, checkpoints.CHECKPOINTS / settings["init"])
    trainable = ["encoder." + n for n in freeze_lower_layers(model.encoder, settings["train_top_layers"])]
    trainable += [n for n, p in model.named_parameters() if not n.startswith("encoder.")]

    def evaluate(m):
        run = rerank_run(m, validation, first_stage, depth=settings["rerank_depth"], show_progress=False)
        return metrics.evaluate(run, validation.qrels, ["ndcg@10"])["ndcg@10"]

    log = [{"step": 0, "validation": evaluate(model), "first_stage": metrics.evaluate(
        first_stage, validation.qrels, ["ndcg@10"])["ndcg@10"], "seconds": 0.0}]
    log += train_cross_encoder(
        model,
        groups,
        steps=steps or settings["steps"],
        groups_per_step=settings["groups_per_step"],
        lr=settings["lr"],
        head_lr=settings["head_lr"],
        warmup=settings["warmup"],
        loss=settings["loss"],
        seed=settings["seed"],
        log_every=10,
        evaluate=evaluate,
        evaluate_every=settings["evaluate_every"],
        on_evaluate=on_evaluate,
    )
    return model, trainable, log


RECIPES = {
    "bi-encoder": {
        "settings": BI_ENCODER,
        "code": [
            train_bi_encoder_recipe, bi_encoder_training_data, mine_hard_negatives, freeze_lower_layers,
            train_bi_encoder, NoDuplicatesBatchSampler, in_batch_negatives_loss, split_validation,
        ],
    },
    "cross-encoder": {
        "settings": CROSS_ENCODER,
        "code": [
            train_cross_encoder_recipe, cross_encoder_training_data, mine_hard_negatives, freeze_lower_layers,
            train_cross_encoder, listwise_loss, CrossEncoder, rerank_run, split_validation, pool,
        ],
    },
}


def recipe_fingerprint(name: str) -> str:
    """The fingerprint a checkpoint of recipe ``name`` made by the current code must carry."""
    return checkpoints.fingerprint(RECIPES[name]["settings"], RECIPES[name]["code"])


def load_bi_encoder(folder: str | Path | None = None, device=None) -> BiEncoder:
    """The course's fine-tuned bi-encoder: the base model with the checkpoint's top layers laid over it."""
    folder = Path(folder or checkpoints.CHECKPOINTS / "bi-encoder")
    settings = checkpoints.read_manifest(folder)["settings"]
    model = BiEncoder(pooling=settings["pooling"], max_length=settings["max_length"], device=device)
    checkpoints.load_weights(model.query_tower, folder)
    return model


def load_cross_encoder(folder: str | Path | None = None, device=None) -> CrossEncoder:
    """The course cross-encoder: the base model with the checkpoint's layers, head and scale laid over it."""
    folder = Path(folder or checkpoints.CHECKPOINTS / "cross-encoder")
    settings = checkpoints.read_manifest(folder)["settings"]
    model = CrossEncoder(max_length=settings["max_length"], cosine_scale=settings["cosine_scale"], device=device)
    return checkpoints.load_weights(model, folder)


def _manifest(name: str, fingerprint: str, steps: int | None, **extra) -> dict:
    return {
        "recipe": name,
        "fingerprint": fingerprint,
        "command": f"python -m xencoder_lab.recipes {name}" + (f" --steps {steps}" if steps else ""),
        "settings": RECIPES[name]["settings"],
        "steps": steps or RECIPES[name]["settings"]["steps"],
        "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _bi_encoder(args, out: Path, fingerprint: str) -> dict:
    start = time.perf_counter()
    model, trainable, log, validation = train_bi_encoder_recipe(steps=args.steps)
    train_seconds = time.perf_counter() - start
    with torch.no_grad():  # measure exactly what is stored: the fp16 weights
        for name, param in model.query_tower.named_parameters():
            if name in trainable:
                param.copy_(param.half().float())
    splits = {"validation": validation, "test": load_beir(BI_ENCODER["dataset"], "test")}

    def evaluate(m):
        return {name: metrics.evaluate(dense_run(m, ds), ds.qrels) for name, ds in splits.items()}

    manifest = _manifest(
        "bi-encoder", fingerprint, args.steps, train_seconds=round(train_seconds), stored="query_tower top layers, fp16",
        metrics={"fine-tuned": evaluate(model), "zero-shot": evaluate(BiEncoder())}, log=log,
    )
    manifest["total_seconds"] = round(time.perf_counter() - start)
    checkpoints.save_checkpoint(model.query_tower, trainable, manifest, out, overwrite=args.overwrite)
    return manifest


def _cross_encoder(args, out: Path, fingerprint: str) -> dict:
    """Train, keeping the best model by validation nDCG@10 on disk as it goes (``"complete": false`` until
    the end), then measure the kept model on SciFact test."""
    start, best = time.perf_counter(), {"value": -1.0, "step": 0}
    init = checkpoints.weights_digest(checkpoints.CHECKPOINTS / CROSS_ENCODER["init"])

    def keep_best(model, step, value, log):
        if value > best["value"]:
            best.update(value=value, step=step)
            trainable = [n for n, p in model.named_parameters() if p.requires_grad]
            manifest = _manifest(
                "cross-encoder", fingerprint, args.steps, complete=False, best_step=step, log=log, init=init,
                train_seconds=round(time.perf_counter() - start), stored="encoder top layers, head, scale; fp16",
            )
            checkpoints.save_checkpoint(model, trainable, manifest, out, overwrite=True)

    _, _, log = train_cross_encoder_recipe(steps=args.steps, on_evaluate=keep_best)
    manifest = checkpoints.read_manifest(out)
    model = load_cross_encoder(out)
    bi = load_bi_encoder()
    test = load_beir(CROSS_ENCODER["dataset"], "test")
    first = dense_run(bi, test)
    depth = CROSS_ENCODER["rerank_depth"]
    manifest.update(
        complete=True,
        log=log,
        total_seconds=round(time.perf_counter() - start),
        metrics={
            "validation ndcg@10 (best)": best["value"],
            f"test: bi-encoder top {depth}": metrics.evaluate(first, test.qrels),
            f"test: bi-encoder top {depth} -> cross-encoder": metrics.evaluate(
                rerank_run(model, test, first, depth=depth), test.qrels),
        },
    )
    checkpoints.write_manifest(out, manifest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a course checkpoint.")
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, help="folder to write (default: data/checkpoints/<recipe>)")
    parser.add_argument("--steps", type=int, help="override the recipe's steps (for a quick trial)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    parser.add_argument("--fingerprint", action="store_true", help="print the recipe's fingerprint and stop")
    args = parser.parse_args(argv)
    if args.fingerprint:
        print(recipe_fingerprint(args.recipe))
        return None
    out = args.out or checkpoints.CHECKPOINTS / args.recipe
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists: pass --overwrite to replace it (the old one moves to {out.name}.previous).")
    fingerprint = recipe_fingerprint(args.recipe)  # now: the code may be edited while a long run goes on
    result = {"bi-encoder": _bi_encoder, "cross-encoder": _cross_encoder}[args.recipe](args, out, fingerprint)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
