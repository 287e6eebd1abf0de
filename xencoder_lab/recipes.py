"""Named recipes for the course checkpoints: one command trains each, with the code the notebooks show.

    python -m xencoder_lab.recipes bi-encoder              # writes data/checkpoints/bi-encoder/
    python -m xencoder_lab.recipes cross-encoder           # starts from the bi-encoder checkpoint
    python -m xencoder_lab.recipes query-tower             # the query tower alone, the documents frozen
    python -m xencoder_lab.recipes small-cross-encoder     # 2 layers, 128 tokens, distilled from the cross-encoder
    python -m xencoder_lab.recipes distilled-bi-encoder    # a query tower taught by the cross-encoder (KL)
    python -m xencoder_lab.recipes poly-encoder            # 16 codes, LoRA on the top 3 layers
    python -m xencoder_lab.recipes colbert                 # 128-d token vectors, LoRA on the top 3 layers

A recipe is its settings plus the code that uses them. Each manifest keeps the settings, the trained model's
outputs on fixed inputs (``checkpoints.probe_outputs``) and the first losses of its training loop on the toy
set (``training_probe``); ``verify`` checks all three against the current code (``course_models.verify``, with
the recipe's training probe), and a test runs it on every committed checkpoint. The settings live in
``settings``; loading a checkpoint, in ``course_models``. Choices are made on a validation split carved from
SciFact train; the test split is only measured, for the manifest.

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
import random
import shlex
import time
from pathlib import Path

import torch

from . import checkpoints, course_models, distill, metrics, protocol
from .bi_encoder import BiEncoder, encode_corpus
from .colbert import ColBERT
from .course_models import StaleCheckpointError, load_bi_encoder, load_cross_encoder
from .cross_encoder import CrossEncoder, rerank, score_candidates, score_groups, small_cross_encoder
from .data import TOY_PATH, document_text, load_beir, split_validation
from .negatives import mine_groups, mine_hard_negatives, mine_negatives
from .poly_encoder import PolyEncoder
from .retrieval import dense_run
from .settings import (
    BI_ENCODER,
    COLBERT,
    CROSS_ENCODER,
    DISTILLED_BI_ENCODER,
    POLY_ENCODER,
    QUERY_TOWER,
    SETTINGS,
    SMALL_CROSS_ENCODER,
)
from .training import (
    corpus_queries,
    freeze_lower_layers,
    train_bi_encoder,
    train_groups,
    train_query_tower,
    training_pairs,
)


def bi_encoder_training_data(model: BiEncoder, settings: dict):
    """(pairs, hard negative texts, validation split): every train judgment outside validation, one mined
    negative each (ranked by ``model``, see ``negatives.mine_hard_negatives``); no negatives (None) when
    ``negative_depth`` is None: in-batch negatives only. Validation claims are drawn at random, or by document
    (``protocol.split_validation_by_document``) when the settings say ``"validation": "by document"``."""
    split = protocol.split_validation_by_document if settings.get("validation") == "by document" else split_validation
    train, validation = split(load_beir(settings["dataset"], "train"), settings["validation_queries"], settings["seed"])
    doc_ids = list(train.corpus)
    column = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    pairs = [(train.queries[qid], document_text(train.corpus[doc_id])) for qid, doc_id in judged]
    if settings["negative_depth"] is None:  # in-batch negatives only
        return pairs, None, validation
    d_emb = encode_corpus(model, train)  # (N, D), cached
    q_emb = model.encode_queries([train.queries[qid] for qid, _ in judged])  # (P, D)
    negatives = mine_hard_negatives(
        model.score(q_emb, d_emb),  # (P, N)
        positives=[column[doc_id] for _, doc_id in judged],
        relevant=[{column[d] for d in train.qrels[qid]} for qid, _ in judged],
        depth=settings["negative_depth"],
        margin=settings["negative_margin"],
        seed=settings["seed"],
    )
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


def train_poly_encoder_recipe(settings: dict = POLY_ENCODER, steps: int | None = None):
    """Train a poly-encoder from all-MiniLM-L6-v2 on SciFact train, the bi-encoder recipe's data and loss with
    LoRA on the top layers and the m codes: ``(model, trainable parameter names, loss log, validation)``."""
    torch.manual_seed(settings["seed"])
    model, lora = course_models.poly_encoder(settings)
    groups = _poly_groups(model, lora, settings)
    pairs, negatives, validation = bi_encoder_training_data(model, settings)  # mined by the untrained model
    log = train_bi_encoder(
        model, pairs, steps=steps or settings["steps"], batch_size=settings["batch_size"], warmup=settings["warmup"],
        temperature=settings["temperature"], hard_negatives=negatives, seed=settings["seed"], log_every=4,
        param_groups=groups,
    )
    return model, lora + ["codes"], log, validation


def _poly_groups(model: PolyEncoder, lora: list[str], settings: dict) -> list[dict]:
    """AdamW's groups for the poly-encoder recipe: its LoRA parameters ``lora``, then the codes."""
    return [{"params": [model.get_parameter(n) for n in lora], "lr": settings["lr"]},
            {"params": [model.codes], "lr": settings["codes_lr"]}]


def _colbert(settings: dict) -> tuple[ColBERT, list[str], list[dict]]:
    """The recipe's ColBERT with LoRA on its top layers: (model, trainable names, AdamW's groups)."""
    model, lora = course_models.colbert(settings)
    groups = [{"params": [model.get_parameter(n) for n in lora], "lr": settings["lr"]},
              {"params": [model.projection.weight], "lr": settings["projection_lr"]}]
    return model, lora + ["projection.weight"], groups


def train_colbert_recipe(settings: dict = COLBERT, steps: int | None = None):
    """Train ColBERT from all-MiniLM-L6-v2 on SciFact train, the bi-encoder recipe's pairs and mined negatives
    with MaxSim scores: ``(model, trainable parameter names, loss log, validation)``."""
    torch.manual_seed(settings["seed"])
    pairs, negatives, validation = bi_encoder_training_data(BiEncoder(max_length=settings["max_length"]), settings)
    model, trainable, groups = _colbert(settings)
    log = train_bi_encoder(
        model, pairs, steps=steps or settings["steps"], batch_size=settings["batch_size"], warmup=settings["warmup"],
        temperature=settings["temperature"], hard_negatives=negatives, seed=settings["seed"], log_every=4,
        param_groups=groups,
    )
    return model, trainable, log, validation


def query_tower_training_data(model: BiEncoder, settings: dict):
    """(queries, positive rows, relevant rows, corpus embeddings (N, D), validation split): one entry per train
    judgment outside the validation claims, rows indexing the corpus as ``encode_corpus`` embeds it; then, when
    ``corpus_queries`` names a kind (or a list of kinds), one label-free entry per document of the whole corpus
    and kind (``training.corpus_queries``: its title or its last sentence as the query for it). Those use no
    judgment, as domain adaptation on a target corpus does, so the abstracts of test claims are among them too."""
    train, validation = protocol.split_validation_by_document(
        load_beir(settings["dataset"], "train"), settings["validation_queries"], settings["seed"]
    )
    column = {doc_id: i for i, doc_id in enumerate(train.corpus)}
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    relevant = {qid: {column[d] for d, g in train.qrels[qid].items() if g > 0} for qid, _ in judged}
    kinds = settings["corpus_queries"] or []
    kinds = [kinds] if isinstance(kinds, str) else kinds
    label_free = [pair for kind in kinds for pair in corpus_queries(train, kind)]
    return (
        [train.queries[qid] for qid, _ in judged] + [query for query, _ in label_free],
        [column[doc_id] for _, doc_id in judged] + [column[doc_id] for _, doc_id in label_free],
        [relevant[qid] for qid, _ in judged] + [{column[doc_id]} for _, doc_id in label_free],
        encode_corpus(model, train),  # (N, D): the frozen document tower, cached
        validation,
    )


def train_query_tower_recipe(settings: dict = QUERY_TOWER, steps: int | None = None):
    """Fine-tune the query tower of all-MiniLM-L6-v2 on SciFact train against the zero-shot corpus embeddings:
    ``(model, trainable parameter names, log, validation)``; the model holds the best evaluated weights."""
    torch.manual_seed(settings["seed"])
    model = BiEncoder(pooling=settings["pooling"], max_length=settings["max_length"], shared=False)
    queries, positives, relevant, d_emb, validation = query_tower_training_data(model, settings)
    trainable = freeze_lower_layers(model.query_tower, settings["train_top_layers"])
    evaluate, keep_best, restore, log = _best_query_tower(model, trainable, validation)
    log += train_query_tower(
        model, queries, positives, d_emb, relevant, steps=steps or settings["steps"],
        batch_size=settings["batch_size"], lr=settings["lr"], warmup=settings["warmup"],
        temperature=settings["temperature"], seed=settings["seed"], log_every=4, evaluate=evaluate,
        evaluate_every=settings["evaluate_every"], on_evaluate=keep_best,
    )
    return model, trainable, restore(log), validation


def _best_query_tower(model: BiEncoder, trainable: list[str], validation):
    """``(evaluate, keep_best, restore, log)`` for a query tower kept at its best validation nDCG@10:
    ``evaluate(m)`` scores ``m`` on ``validation``, ``keep_best`` (an ``on_evaluate`` callback) copies the
    ``trainable`` weights of a new best, ``restore(log)`` loads them back and closes the log; ``log`` starts at
    step 0."""
    best = {"value": -1.0, "step": 0, "weights": None}

    def evaluate(m):
        return metrics.evaluate(dense_run(m, validation), validation.qrels, ["ndcg@10"])["ndcg@10"]

    def keep_best(m, step, value, log):
        if value > best["value"]:
            weights = {n: p.detach().clone() for n, p in m.query_tower.named_parameters() if n in trainable}
            best.update(value=value, step=step, weights=weights)

    def restore(log):
        model.query_tower.load_state_dict(best["weights"], strict=False)
        return log + [{"best_step": best["step"], "validation": best["value"]}]

    log = [{"step": 0, "validation": evaluate(model), "seconds": 0.0}]
    keep_best(model, 0, log[0]["validation"], log)
    return evaluate, keep_best, restore, log


def cross_encoder_training_data(bi: BiEncoder, settings: dict):
    """(groups, validation split, the bi-encoder's validation run): for each train claim and relevant abstract,
    the ``negatives`` best-ranked abstracts the bi-encoder gets wrong (``negatives.mine_groups``)."""
    train, validation = split_validation(
        load_beir(settings["dataset"], "train"), settings["validation_queries"], settings["seed"]
    )
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    scores = bi.encode_queries([train.queries[q] for q, _ in judged]) @ encode_corpus(bi, train).T  # (P, N)
    groups = mine_groups(train, judged, scores, settings["negatives"], settings["negative_margin"])
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
        depth = settings["rerank_depth"]
        scores = score_candidates(m, validation, [first_stage], depth, show_progress=False, cache=False)
        return metrics.evaluate(rerank(first_stage, scores, depth), validation.qrels, ["ndcg@10"])["ndcg@10"]

    log = [{"step": 0, "validation": evaluate(model), "first_stage": metrics.evaluate(
        first_stage, validation.qrels, ["ndcg@10"])["ndcg@10"], "seconds": 0.0}]
    log += train_groups(
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


def distillation_data(settings: dict):
    """(groups, the teacher's logits (G, 1 + negatives), validation split) for the students of notebook 06.

    Two kinds of group ``(query, positive, [negatives])``: every train judgment outside validation, negatives
    mined by the fine-tuned bi-encoder (as for the cross-encoder); and ``title_queries`` label-free ones, the
    title of an abstract no train or validation claim cites as the query for its text, the other texts' titles
    dropped too. Abstracts relevant to test claims may be among them: their titles are used, never a judgment.
    """
    train, validation = protocol.split_validation_by_document(
        load_beir(settings["dataset"], "train"), settings["validation_queries"], settings["seed"]
    )
    miner = load_bi_encoder(checkpoints.CHECKPOINTS / settings["miner"])
    d_emb = encode_corpus(miner, train)  # (N, D), cached
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    scores = miner.encode_queries([train.queries[q] for q, _ in judged], show_progress=False) @ d_emb.T  # (P, N)
    groups = mine_groups(train, judged, scores, settings["negatives"], settings["negative_margin"])

    doc_ids = list(train.corpus)
    cited = protocol.relevant_documents(train) | protocol.relevant_documents(validation)
    pool = [d for d in doc_ids if d not in cited and train.corpus[d].get("title", "").strip()
            and train.corpus[d].get("text", "").strip()]
    chosen = random.Random(settings["seed"]).sample(pool, min(settings["title_queries"], len(pool)))
    column = {d: i for i, d in enumerate(doc_ids)}
    titles = [train.corpus[d]["title"] for d in chosen]
    t_scores = miner.encode_queries(titles, show_progress=False) @ d_emb.T  # (T, N)
    negatives = mine_negatives(t_scores, [column[d] for d in chosen], [{column[d]} for d in chosen],
                               settings["negatives"], settings["negative_margin"])
    text = lambda c: train.corpus[doc_ids[c]]["text"]  # noqa: E731
    groups += [(t, train.corpus[d]["text"], [text(c) for c in negs]) for t, d, negs in zip(titles, chosen, negatives)]
    teacher = load_cross_encoder(checkpoints.CHECKPOINTS / settings["teacher"])
    return groups, score_groups(teacher, groups, cache=True, show_progress=None), validation


def train_small_cross_encoder_recipe(settings: dict = SMALL_CROSS_ENCODER, steps: int | None = None):
    """Distil the course cross-encoder into its bottom ``layers`` layers at ``max_length`` tokens:
    ``(model, trainable parameter names, log)``; the model holds the best weights by validation nDCG@10."""
    torch.manual_seed(settings["seed"])
    groups, teacher, validation = distillation_data(settings)
    bi = load_bi_encoder(checkpoints.CHECKPOINTS / settings["miner"])
    depth = settings["rerank_depth"]
    first_stage = dense_run(bi, validation, k=depth)
    model = small_cross_encoder(
        load_cross_encoder(checkpoints.CHECKPOINTS / settings["teacher"]), settings["layers"], settings["max_length"])
    trainable = ["encoder." + n for n in freeze_lower_layers(model.encoder, settings["layers"])]
    trainable += [n for n, p in model.named_parameters() if not n.startswith("encoder.")]
    best = {"value": -1.0, "step": 0, "weights": None}

    def evaluate(m):
        scores = score_candidates(m, validation, [first_stage], depth, show_progress=False, cache=False)
        return metrics.evaluate(rerank(first_stage, scores, depth), validation.qrels, ["ndcg@10"])["ndcg@10"]

    def keep_best(m, step, value, log):
        if value > best["value"]:
            best.update(value=value, step=step, weights={n: p.detach().clone() for n, p in m.named_parameters()})

    log = [{"step": 0, "validation": evaluate(model), "first_stage": metrics.evaluate(
        first_stage, validation.qrels, ["ndcg@10"])["ndcg@10"], "seconds": 0.0}]
    keep_best(model, 0, log[0]["validation"], log)
    log += train_groups(
        model, groups, settings["loss"], teacher, steps=steps or settings["steps"],
        groups_per_step=settings["groups_per_step"], lr=settings["lr"], head_lr=settings["head_lr"],
        warmup=settings["warmup"], seed=settings["seed"], log_every=10, evaluate=evaluate,
        evaluate_every=settings["evaluate_every"], on_evaluate=keep_best,
    )
    model.load_state_dict(best["weights"])
    log.append({"best_step": best["step"], "validation": best["value"]})
    return model, trainable, log, validation


def train_distilled_bi_encoder_recipe(settings: dict = DISTILLED_BI_ENCODER, steps: int | None = None):
    """Distil the course cross-encoder into all-MiniLM-L6-v2's query tower, the documents left to the zero-shot
    model (``document_tower: "frozen"``; ``"shared"`` trains one tower for both): ``(model, trainable parameter
    names, log, validation)``; the model holds the best weights by validation nDCG@10."""
    torch.manual_seed(settings["seed"])
    groups, teacher, validation = distillation_data(settings)
    model, trainable = _distilled_student(settings)
    evaluate, keep_best, restore, log = _best_query_tower(model, trainable, validation)
    log += train_groups(
        model, groups, settings["loss"], teacher,
        lambda chosen: distill.bi_encoder_group_scores(model, chosen, settings["scale"]),
        steps=steps or settings["steps"], groups_per_step=settings["groups_per_step"],
        lr=settings["lr"], warmup=settings["warmup"], seed=settings["seed"], log_every=4, evaluate=evaluate,
        evaluate_every=settings["evaluate_every"], on_evaluate=keep_best,
    )
    return model, trainable, restore(log), validation


def _distilled_student(settings: dict) -> tuple[BiEncoder, list[str]]:
    """The distilled bi-encoder before training and the names of what trains (the query tower's top layers)."""
    shared = settings["document_tower"] == "shared"
    if not shared and settings["document_tower"] != "frozen":
        raise ValueError(f"document_tower={settings['document_tower']!r}: use \"frozen\" or \"shared\".")
    model = BiEncoder(pooling=settings["pooling"], max_length=settings["max_length"], shared=shared)
    model.doc_tower.requires_grad_(shared)
    return model, freeze_lower_layers(model.query_tower, settings["train_top_layers"])


def bi_encoder_training_probe(settings: dict = BI_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set: the base model, the recipe's
    frozen layers, loss and temperature, batches of 4, one toy document as every pair's hard negative. Each
    query is paired with the next pair's document, so the loss starts high and every step moves it."""
    torch.manual_seed(settings["seed"])
    model = BiEncoder(pooling=settings["pooling"], max_length=settings["max_length"])
    freeze_lower_layers(model.query_tower, settings["train_top_layers"])
    return _toy_pairs_probe(model, settings, steps)


def poly_encoder_training_probe(settings: dict = POLY_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set, as ``bi_encoder_training_probe``:
    the recipe's codes, LoRA and learning rates."""
    torch.manual_seed(settings["seed"])
    model, lora = course_models.poly_encoder(settings)
    return _toy_pairs_probe(model, settings, steps, _poly_groups(model, lora, settings))


def colbert_training_probe(settings: dict = COLBERT, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set, as ``bi_encoder_training_probe``:
    the recipe's ColBERT, LoRA, learning rates and temperature."""
    torch.manual_seed(settings["seed"])
    model, _, groups = _colbert(settings)
    return _toy_pairs_probe(model, settings, steps, groups)


def _toy_pairs_probe(model, settings: dict, steps: int, param_groups=None) -> list[float]:
    """``train_bi_encoder`` on the toy pairs, batches of 4, each query paired with the next pair's document
    and one toy document as every pair's hard negative: the first ``steps`` losses."""
    toy = load_beir("toy", path=TOY_PATH)
    queries, docs = zip(*training_pairs(toy))
    pairs = list(zip(queries, docs[1:] + docs[:1]))
    log = train_bi_encoder(
        model, pairs, steps=steps, batch_size=4, lr=settings["lr"], warmup=1, temperature=settings["temperature"],
        hard_negatives=[document_text(toy.corpus["d16"])] * len(pairs), seed=settings["seed"], log_every=1,
        show_progress=False, param_groups=param_groups,
    )
    return [round(entry["loss"], 5) for entry in log]


def cross_encoder_training_probe(settings: dict = CROSS_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set: the recipe's starting weights,
    frozen layers, loss and learning rates, 2 groups a step of 1 positive and 3 other toy documents."""
    torch.manual_seed(settings["seed"])
    model = CrossEncoder(max_length=settings["max_length"], cosine_scale=settings["cosine_scale"])
    checkpoints.load_weights(model.encoder, checkpoints.CHECKPOINTS / settings["init"])
    freeze_lower_layers(model.encoder, settings["train_top_layers"])
    groups = _toy_groups(negatives=3)
    log = train_groups(
        model, groups, steps=steps, groups_per_step=2, lr=settings["lr"], head_lr=settings["head_lr"], warmup=1,
        loss=settings["loss"], seed=settings["seed"], log_every=1, show_progress=False,
    )
    return [round(entry["loss"], 5) for entry in log]


def query_tower_training_probe(settings: dict = QUERY_TOWER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set: the base model with the recipe's
    frozen document tower and layers, its loss over the whole (toy) corpus, batches of 4. Each claim's
    positive is the next pair's document, so the loss starts high and every step moves it."""
    torch.manual_seed(settings["seed"])
    model = BiEncoder(pooling=settings["pooling"], max_length=settings["max_length"], shared=False)
    freeze_lower_layers(model.query_tower, settings["train_top_layers"])
    toy = load_beir("toy", path=TOY_PATH)
    rows = {doc_id: i for i, doc_id in enumerate(toy.corpus)}
    judged = [(q, d) for q, docs in toy.qrels.items() for d, g in docs.items() if g > 0]
    d_emb = model.encode_documents([document_text(doc) for doc in toy.corpus.values()], show_progress=False)
    log = train_query_tower(
        model, [toy.queries[q] for q, _ in judged], [rows[d] for _, d in judged[1:] + judged[:1]], d_emb,
        steps=steps, batch_size=4, lr=settings["lr"], warmup=1, temperature=settings["temperature"],
        seed=settings["seed"], log_every=1, show_progress=False,
    )
    return [round(entry["loss"], 5) for entry in log]


def _toy_groups(negatives: int = 3) -> list[tuple[str, str, list[str]]]:
    """Toy groups for the training probes: each judged pair with ``negatives`` other toy documents."""
    toy = load_beir("toy", path=TOY_PATH)
    texts = [document_text(doc) for doc in toy.corpus.values()]
    pairs = training_pairs(toy)
    return [(q, d, [t for t in texts if t != d][i % 4 :: 4][:negatives]) for i, (q, d) in enumerate(pairs)]


def small_cross_encoder_training_probe(settings: dict = SMALL_CROSS_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on toy groups: the teacher checkpoint's logits as
    targets, the recipe's student, loss and learning rates, 2 groups a step."""
    torch.manual_seed(settings["seed"])
    teacher = load_cross_encoder(checkpoints.CHECKPOINTS / settings["teacher"])
    groups = _toy_groups(settings["negatives"])
    targets = score_groups(teacher, groups, cache=True, show_progress=None)
    model = small_cross_encoder(teacher, settings["layers"], settings["max_length"])
    freeze_lower_layers(model.encoder, settings["layers"])
    log = train_groups(
        model, groups, settings["loss"], targets, steps=steps, groups_per_step=2, lr=settings["lr"],
        head_lr=settings["head_lr"], warmup=1, seed=settings["seed"], log_every=1, show_progress=False,
    )
    return [round(entry["loss"], 5) for entry in log]


def distilled_bi_encoder_training_probe(settings: dict = DISTILLED_BI_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on toy groups: the teacher checkpoint's logits as
    targets, the recipe's student, frozen layers, loss and scale, 2 groups a step."""
    torch.manual_seed(settings["seed"])
    groups = _toy_groups(settings["negatives"])
    targets = score_groups(load_cross_encoder(checkpoints.CHECKPOINTS / settings["teacher"]), groups, cache=True,
                           show_progress=None)
    model, _ = _distilled_student(settings)
    log = train_groups(
        model, groups, settings["loss"], targets,
        lambda chosen: distill.bi_encoder_group_scores(model, chosen, settings["scale"]), steps=steps,
        groups_per_step=2, lr=settings["lr"], warmup=1, seed=settings["seed"], log_every=1, show_progress=False,
    )
    return [round(entry["loss"], 5) for entry in log]


TRAINING_PROBES = {
    "bi-encoder": bi_encoder_training_probe,
    "cross-encoder": cross_encoder_training_probe,
    "query-tower": query_tower_training_probe,
    "small-cross-encoder": small_cross_encoder_training_probe,
    "distilled-bi-encoder": distilled_bi_encoder_training_probe,
    "poly-encoder": poly_encoder_training_probe,
    "colbert": colbert_training_probe,
}
RECIPES = {name: {"settings": SETTINGS[name], "training_probe": probe} for name, probe in TRAINING_PROBES.items()}


def verify(name: str, folder: str | Path | None = None, training: bool = True) -> dict:
    """``course_models.verify`` with the recipe's own training probe (``training=False`` skips that check, the
    slowest); returns the manifest or raises ``StaleCheckpointError``."""
    return course_models.verify(name, folder, RECIPES[name]["training_probe"] if training else None)


def _manifest(name: str, steps: int | None, trained: dict | None = None, **extra) -> dict:
    """A checkpoint's manifest: the recipe's settings, and the steps ``trained`` (the run's own settings) took."""
    return {
        "recipe": name,
        "command": f"python -m xencoder_lab.recipes {name}" + (f" --steps {steps}" if steps else ""),
        "settings": RECIPES[name]["settings"],
        "steps": steps or (trained or RECIPES[name]["settings"])["steps"],
        "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _bi_encoder(args, out: Path, training_probe: list[float], name: str, settings: dict) -> dict:
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
              **protocol.columns(load_beir(settings["dataset"], "test"), load_beir(settings["dataset"], "train"))}

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
    )
    manifest["total_seconds"] = round(time.perf_counter() - start)
    if args.record:
        return _record(name, settings, {**manifest, "per_query": per_query}, args.overwrite)
    checkpoints.save_checkpoint(stored, trainable, manifest, out, overwrite=args.overwrite)
    return manifest


def _record(name: str, settings: dict, manifest: dict, overwrite: bool) -> dict:
    """Add a run with changed settings to ``data/checkpoints/<name>/variants.json``: the change, the command,
    the figures (with nDCG@10 per query, when the manifest has them, for paired tests: ``checkpoints.variants``)
    and the seconds (no weights). A run already recorded with the same change is kept unless ``overwrite``."""
    path = checkpoints.CHECKPOINTS / name / "variants.json"
    changed = {k: v for k, v in settings.items() if RECIPES[name]["settings"].get(k) != v}
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    if any(run["changed"] == changed for run in runs) and not overwrite:
        raise FileExistsError(f"{path} already records a run with {changed}: pass --overwrite to replace it.")
    command = manifest["command"] + "".join(f" --set {shlex.quote(f'{k}={json.dumps(v)}')}"
                                            for k, v in changed.items()) + " --record"
    run = {"changed": changed, "command": command, "steps": manifest["steps"], "metrics": manifest["metrics"],
           "train_seconds": manifest["train_seconds"], "hardware": manifest["hardware"],
           **({"ndcg@10 per query": manifest["per_query"]} if manifest.get("per_query") else {})}
    runs = [r for r in runs if r["changed"] != changed] + [run]
    about = (f"Runs of the {name} recipe with one setting changed, measured like its checkpoint; each was made by "
             "its command. No weights are kept.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"about": about, "runs": runs}, indent=1) + "\n")
    return run


def _cross_encoder(args, out: Path, training_probe: list[float]) -> dict:
    """Train, keeping the best model by validation nDCG@10 on disk as it goes (``"complete": false`` until
    the end), then measure the kept model on SciFact test."""
    start, best = time.perf_counter(), {"value": -1.0, "step": 0}
    init = checkpoints.weights_digest(checkpoints.CHECKPOINTS / CROSS_ENCODER["init"])

    def keep_best(model, step, value, log):
        if value > best["value"]:
            best.update(value=value, step=step)
            trainable = [n for n, p in model.named_parameters() if p.requires_grad]
            manifest = _manifest(
                "cross-encoder", args.steps, complete=False, best_step=step, log=log, init=init,
                training_probe=training_probe,
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
    scores = score_candidates(model, test, [first], depth)
    manifest.update(
        complete=True,
        log=log,
        probe=checkpoints.probe_outputs(model),
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


def _small_cross_encoder(args, out: Path, training_probe: list[float]) -> dict:
    """Distil, store the best student by validation, and measure it on the three columns: reranking the
    fine-tuned bi-encoder's top ``test_depth``, beside that first stage and the teacher."""
    start = time.perf_counter()
    settings = SMALL_CROSS_ENCODER
    model, trainable, log, validation = train_small_cross_encoder_recipe(steps=args.steps)
    train_seconds = time.perf_counter() - start
    with torch.no_grad():  # measure exactly what is stored: the fp16 weights
        for name, param in model.named_parameters():
            if name in trainable:
                param.copy_(param.half().float())
    bi = load_bi_encoder(checkpoints.CHECKPOINTS / settings["miner"])
    teacher = load_cross_encoder(checkpoints.CHECKPOINTS / settings["teacher"])
    depth = settings["test_depth"]
    results = {}
    for column, ds in protocol.columns(load_beir(settings["dataset"], "test"),
                                       load_beir(settings["dataset"], "train")).items():
        first = dense_run(bi, ds, k=depth)
        results[column] = {"bi-encoder": metrics.evaluate(first, ds.qrels)}
        for label, m in (("teacher", teacher), ("student", model)):
            scores = score_candidates(m, ds, [first], depth)
            results[column][f"bi-encoder top {depth} -> {label}"] = metrics.evaluate(rerank(first, scores, depth),
                                                                                    ds.qrels)
    manifest = _manifest(
        "small-cross-encoder", args.steps, train_seconds=round(train_seconds), best_step=log[-1]["best_step"],
        stored="encoder layers, head, scale; fp16", metrics=results, log=log,
        probe=checkpoints.probe_outputs(model), training_probe=training_probe,
    )
    manifest["total_seconds"] = round(time.perf_counter() - start)
    checkpoints.save_checkpoint(model, trainable, manifest, out, overwrite=args.overwrite)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train a course checkpoint.")
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, help="folder to write (default: data/checkpoints/<recipe>)")
    parser.add_argument("--steps", type=int, help="override the recipe's steps (for a quick trial)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    parser.add_argument("--verify", action="store_true", help="check the checkpoint against the current code")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a setting (JSON value, e.g. negative_depth=null); needs --record")
    parser.add_argument("--record", action="store_true",
                        help="store no weights: add the run's figures to data/checkpoints/<recipe>/variants.json")
    args = parser.parse_args(argv)
    settings = dict(RECIPES[args.recipe]["settings"])
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in settings:
            parser.error(f"--set {item}: {args.recipe} has no setting {key!r}; its settings: {', '.join(settings)}.")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    if args.set and not args.record:
        parser.error("--set changes a recipe: add --record (a checkpoint is made by the recipe's own settings).")
    recordable = ("bi-encoder", "query-tower", "distilled-bi-encoder", "poly-encoder", "colbert")
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
    training_probe = RECIPES[args.recipe]["training_probe"]()  # first: the code may be edited during a long run
    if args.recipe == "cross-encoder":
        result = _cross_encoder(args, out, training_probe)
    elif args.recipe == "small-cross-encoder":
        result = _small_cross_encoder(args, out, training_probe)
    else:
        result = _bi_encoder(args, out, training_probe, args.recipe, settings)
    print(f"recorded in {out / 'variants.json'}" if args.record else f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
