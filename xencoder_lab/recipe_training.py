"""How each course recipe trains: the model it starts from, what trains, the loop's settings, the model kept; and
each recipe's training probe, the first losses of its loop on the toy set (notebooks 03-08).

``recipes`` runs these (``python -m xencoder_lab.recipes <recipe>``), measures the result and stores it; the data
comes from ``recipe_data``, the settings from ``settings``, the loop is ``training``'s. A checkpoint's manifest
keeps its training probe, and ``recipes.verify`` fails when today's loop computes other losses: a change to the
loop, the loss or the starting model is caught without retraining.
"""

from __future__ import annotations

import torch

from . import checkpoints, course_models, distill, metrics
from .bi_encoder import BiEncoder
from .colbert import ColBERT
from .course_models import load_bi_encoder, load_cross_encoder
from .cross_encoder import CrossEncoder, rerank, score_candidates, score_groups, small_cross_encoder
from .data import TOY_PATH, document_text, load_beir
from .poly_encoder import PolyEncoder
from .recipe_data import (
    bi_encoder_training_data,
    cross_encoder_training_data,
    distillation_data,
    query_tower_training_data,
)
from .retrieval import dense_run
from .settings import (
    BI_ENCODER,
    COLBERT,
    CROSS_ENCODER,
    CROSS_ENCODER_FIRST_STAGE,
    DISTILLED_BI_ENCODER,
    POLY_ENCODER,
    QUERY_TOWER,
    SMALL_CROSS_ENCODER,
    BiEncoderRecipe,
    ColBERTRecipe,
    CrossEncoderRecipe,
    DistilledBiEncoderRecipe,
    EveryLengthRecipe,
    PairRecipe,
    PolyEncoderRecipe,
    QueryTowerRecipe,
    Recipe,
    SmallCrossEncoderRecipe,
)
from .training import (
    freeze_lower_layers,
    train_bi_encoder,
    train_groups,
    train_query_tower,
    training_pairs,
)

FIRST_STAGE_COMMIT = "fb61a29d3c116175fbe2550129fdfd7bf6aa0ff4"  # its data/checkpoints/cross-encoder: the first stage


def _loop(settings: Recipe, steps: int | None, log_every: int = 4, evaluate=None, on_evaluate=None) -> dict:
    """The loop's settings of a recipe (``training.Loop``'s fields): its steps (or ``steps``), warm-up and seed, an
    evaluation every ``evaluate_every`` steps when the recipe evaluates."""
    loop = {"steps": steps or settings.steps, "warmup": settings.warmup, "seed": settings.seed,
            "log_every": log_every}
    if evaluate is not None:
        loop.update(evaluate=evaluate, evaluate_every=settings.evaluate_every, on_evaluate=on_evaluate)
    return loop


def train_bi_encoder_recipe(settings: BiEncoderRecipe = BI_ENCODER, steps: int | None = None):
    """Fine-tune all-MiniLM-L6-v2 on SciFact train: ``(model, trainable parameter names, loss log, validation)``."""
    torch.manual_seed(settings.seed)
    model = BiEncoder(pooling=settings.pooling, max_length=settings.max_length)
    pairs, negatives, validation = bi_encoder_training_data(model, settings)
    trainable = freeze_lower_layers(model.query_tower, settings.train_top_layers)
    log = train_bi_encoder(model, pairs, batch_size=settings.batch_size, lr=settings.lr,
                           temperature=settings.temperature, hard_negatives=negatives, **_loop(settings, steps))
    return model, trainable, log, validation


def train_poly_encoder_recipe(settings: PolyEncoderRecipe = POLY_ENCODER, steps: int | None = None):
    """Train a poly-encoder from all-MiniLM-L6-v2 on SciFact train, the bi-encoder recipe's data and loss with
    LoRA on the top layers and the m codes: ``(model, trainable parameter names, loss log, validation)``."""
    torch.manual_seed(settings.seed)
    model, lora = course_models.poly_encoder(settings)
    groups = _poly_groups(model, lora, settings)
    pairs, negatives, validation = bi_encoder_training_data(model, settings)  # mined by the untrained model
    log = train_bi_encoder(model, pairs, batch_size=settings.batch_size, temperature=settings.temperature,
                           hard_negatives=negatives, param_groups=groups, **_loop(settings, steps))
    return model, lora + ["codes"], log, validation


def _poly_groups(model: PolyEncoder, lora: list[str], settings: PolyEncoderRecipe) -> list[dict]:
    """AdamW's groups for the poly-encoder recipe: its LoRA parameters ``lora``, then the codes."""
    return [{"params": [model.get_parameter(n) for n in lora], "lr": settings.lr},
            {"params": [model.codes], "lr": settings.codes_lr}]


def _colbert(settings: ColBERTRecipe) -> tuple[ColBERT, list[str], list[dict]]:
    """The recipe's ColBERT with LoRA on its top layers: (model, trainable names, AdamW's groups)."""
    model, lora = course_models.colbert(settings)
    groups = [{"params": [model.get_parameter(n) for n in lora], "lr": settings.lr},
              {"params": [model.projection.weight], "lr": settings.projection_lr}]
    return model, lora + ["projection.weight"], groups


def train_colbert_recipe(settings: ColBERTRecipe = COLBERT, steps: int | None = None):
    """Train ColBERT from all-MiniLM-L6-v2 on SciFact train, the bi-encoder recipe's pairs and mined negatives
    with MaxSim scores: ``(model, trainable parameter names, loss log, validation)``."""
    torch.manual_seed(settings.seed)
    pairs, negatives, validation = bi_encoder_training_data(BiEncoder(max_length=settings.max_length), settings)
    model, trainable, groups = _colbert(settings)
    log = train_bi_encoder(model, pairs, batch_size=settings.batch_size, temperature=settings.temperature,
                           hard_negatives=negatives, param_groups=groups, **_loop(settings, steps))
    return model, trainable, log, validation


def train_query_tower_recipe(settings: QueryTowerRecipe = QUERY_TOWER, steps: int | None = None):
    """Fine-tune the query tower of all-MiniLM-L6-v2 on SciFact train against the zero-shot corpus embeddings:
    ``(model, trainable parameter names, log, validation)``; the model holds the best evaluated weights."""
    torch.manual_seed(settings.seed)
    model = BiEncoder(pooling=settings.pooling, max_length=settings.max_length, shared=False)
    queries, positives, relevant, d_emb, validation = query_tower_training_data(model, settings)
    trainable = freeze_lower_layers(model.query_tower, settings.train_top_layers)
    evaluate, keep_best, restore, log = _best_query_tower(model, trainable, validation)
    log += train_query_tower(
        model, queries, positives, d_emb, relevant, batch_size=settings.batch_size, lr=settings.lr,
        temperature=settings.temperature, **_loop(settings, steps, evaluate=evaluate, on_evaluate=keep_best),
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


def cross_encoder_start(settings: CrossEncoderRecipe) -> CrossEncoder:
    """The model a cross-encoder recipe starts from: for the second stage (``EveryLengthRecipe``) the whole
    ``init`` checkpoint (encoder, ``[CLS]`` head and warm-start scale), else a new ``CrossEncoder`` (a fresh head,
    the warm-start scale at ``cosine_scale``) whose encoder has the ``init`` bi-encoder's weights.

    Raises:
        FileNotFoundError: the second stage's ``init`` checkpoint is missing, saying how to make or restore it.
    """
    folder = checkpoints.CHECKPOINTS / settings.init
    if isinstance(settings, EveryLengthRecipe):
        if not (folder / "weights.safetensors").exists():
            raise FileNotFoundError(
                f"the second stage starts from {folder}, which holds no weights: train the first stage with "
                f"`python -m xencoder_lab.recipes {settings.init}` (about 5 minutes on a GPU, hours on a CPU), or "
                f"restore the weights it was trained from, kept in this repository's history: `git show "
                f"{FIRST_STAGE_COMMIT}:data/checkpoints/cross-encoder/weights.safetensors > "
                f"{folder / 'weights.safetensors'}` (the manifest's `init` is their digest).")
        return load_cross_encoder(folder)
    model = CrossEncoder(max_length=settings.max_length, cosine_scale=settings.cosine_scale)
    checkpoints.load_weights(model.encoder, folder)
    return model


def train_cross_encoder_recipe(settings: CrossEncoderRecipe = CROSS_ENCODER, steps: int | None = None,
                               on_evaluate=None):
    """Train the course cross-encoder: ``(model, trainable parameter names, log)``.

    The learning curve (validation nDCG@10 of reranking the bi-encoder's top ``rerank_depth``) is in the log.
    """
    torch.manual_seed(settings.seed)
    bi = load_bi_encoder()
    groups, validation, first_stage = cross_encoder_training_data(bi, settings)
    model = cross_encoder_start(settings)
    trainable = ["encoder." + n for n in freeze_lower_layers(model.encoder, settings.train_top_layers)]
    trainable += [n for n, p in model.named_parameters() if not n.startswith("encoder.")]

    def evaluate(m):
        depth = settings.rerank_depth
        scores = score_candidates(m, validation, [first_stage], depth, show_progress=False, cache=False)
        return metrics.evaluate(rerank(first_stage, scores, depth), validation.qrels, ["ndcg@10"])["ndcg@10"]

    log = [{"step": 0, "validation": evaluate(model), "first_stage": metrics.evaluate(
        first_stage, validation.qrels, ["ndcg@10"])["ndcg@10"], "seconds": 0.0}]
    log += train_groups(
        model, groups, settings.loss, groups_per_step=settings.groups_per_step, lr=settings.lr,
        head_lr=settings.head_lr, **_loop(settings, steps, log_every=10, evaluate=evaluate, on_evaluate=on_evaluate),
    )
    return model, trainable, log


def train_small_cross_encoder_recipe(settings: SmallCrossEncoderRecipe = SMALL_CROSS_ENCODER, steps: int | None = None):
    """Distil the course cross-encoder into its bottom ``layers`` layers at ``max_length`` tokens:
    ``(model, trainable parameter names, log)``; the model holds the best weights by validation nDCG@10."""
    torch.manual_seed(settings.seed)
    groups, teacher, validation = distillation_data(settings)
    bi = load_bi_encoder(checkpoints.CHECKPOINTS / settings.miner)
    depth = settings.rerank_depth
    first_stage = dense_run(bi, validation, k=depth)
    model = small_cross_encoder(
        load_cross_encoder(checkpoints.CHECKPOINTS / settings.teacher), settings.layers, settings.max_length)
    trainable = ["encoder." + n for n in freeze_lower_layers(model.encoder, settings.layers)]
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
        model, groups, settings.loss, teacher, groups_per_step=settings.groups_per_step, lr=settings.lr,
        head_lr=settings.head_lr, **_loop(settings, steps, log_every=10, evaluate=evaluate, on_evaluate=keep_best),
    )
    model.load_state_dict(best["weights"])
    log.append({"best_step": best["step"], "validation": best["value"]})
    return model, trainable, log, validation


def train_distilled_bi_encoder_recipe(settings: DistilledBiEncoderRecipe = DISTILLED_BI_ENCODER,
                                      steps: int | None = None):
    """Distil the course cross-encoder into all-MiniLM-L6-v2's query tower, the documents left to the zero-shot
    model (``document_tower="frozen"``; ``"shared"`` trains one tower for both): ``(model, trainable parameter
    names, log, validation)``; the model holds the best weights by validation nDCG@10."""
    torch.manual_seed(settings.seed)
    groups, teacher, validation = distillation_data(settings)
    model, trainable = distilled_student(settings)
    evaluate, keep_best, restore, log = _best_query_tower(model, trainable, validation)
    log += train_groups(
        model, groups, settings.loss, teacher,
        lambda chosen: distill.bi_encoder_group_scores(model, chosen, settings.scale),
        groups_per_step=settings.groups_per_step, lr=settings.lr,
        **_loop(settings, steps, evaluate=evaluate, on_evaluate=keep_best),
    )
    return model, trainable, restore(log), validation


def distilled_student(settings: DistilledBiEncoderRecipe) -> tuple[BiEncoder, list[str]]:
    """The distilled bi-encoder before training and the names of what trains (the query tower's top layers)."""
    shared = settings.document_tower == "shared"
    if not shared and settings.document_tower != "frozen":
        raise ValueError(f"document_tower={settings.document_tower!r}: use \"frozen\" or \"shared\".")
    model = BiEncoder(pooling=settings.pooling, max_length=settings.max_length, shared=shared)
    model.doc_tower.requires_grad_(shared)
    return model, freeze_lower_layers(model.query_tower, settings.train_top_layers)


def bi_encoder_training_probe(settings: BiEncoderRecipe = BI_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set: the base model, the recipe's
    frozen layers, loss and temperature, batches of 4, one toy document as every pair's hard negative. Each
    query is paired with the next pair's document, so the loss starts high and every step moves it."""
    torch.manual_seed(settings.seed)
    model = BiEncoder(pooling=settings.pooling, max_length=settings.max_length)
    freeze_lower_layers(model.query_tower, settings.train_top_layers)
    return _toy_pairs_probe(model, settings, steps)


def poly_encoder_training_probe(settings: PolyEncoderRecipe = POLY_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set, as ``bi_encoder_training_probe``:
    the recipe's codes, LoRA and learning rates."""
    torch.manual_seed(settings.seed)
    model, lora = course_models.poly_encoder(settings)
    return _toy_pairs_probe(model, settings, steps, _poly_groups(model, lora, settings))


def colbert_training_probe(settings: ColBERTRecipe = COLBERT, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set, as ``bi_encoder_training_probe``:
    the recipe's ColBERT, LoRA, learning rates and temperature."""
    torch.manual_seed(settings.seed)
    model, _, groups = _colbert(settings)
    return _toy_pairs_probe(model, settings, steps, groups)


def _toy_pairs_probe(model, settings: PairRecipe, steps: int, param_groups=None) -> list[float]:
    """``train_bi_encoder`` on the toy pairs, batches of 4, each query paired with the next pair's document
    and one toy document as every pair's hard negative: the first ``steps`` losses."""
    toy = load_beir("toy", path=TOY_PATH)
    queries, docs = zip(*training_pairs(toy))
    pairs = list(zip(queries, docs[1:] + docs[:1]))
    log = train_bi_encoder(
        model, pairs, steps=steps, batch_size=4, lr=settings.lr, warmup=1, temperature=settings.temperature,
        hard_negatives=[document_text(toy.corpus["d16"])] * len(pairs), seed=settings.seed, log_every=1,
        show_progress=False, param_groups=param_groups,
    )
    return [round(entry["loss"], 5) for entry in log]


def cross_encoder_training_probe(settings: CrossEncoderRecipe = CROSS_ENCODER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set: its frozen layers, loss and learning
    rates, 2 groups a step of 1 positive and 3 other toy documents, from the first stage's starting weights (the
    bi-encoder's encoder and a new head), which are committed, also for the second stage."""
    torch.manual_seed(settings.seed)
    model = cross_encoder_start(CROSS_ENCODER_FIRST_STAGE if isinstance(settings, EveryLengthRecipe) else settings)
    freeze_lower_layers(model.encoder, settings.train_top_layers)
    groups = _toy_groups(negatives=3)
    log = train_groups(
        model, groups, steps=steps, groups_per_step=2, lr=settings.lr, head_lr=settings.head_lr, warmup=1,
        loss=settings.loss, seed=settings.seed, log_every=1, show_progress=False,
    )
    return [round(entry["loss"], 5) for entry in log]


def query_tower_training_probe(settings: QueryTowerRecipe = QUERY_TOWER, steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on the toy set: the base model with the recipe's
    frozen document tower and layers, its loss over the whole (toy) corpus, batches of 4. Each claim's
    positive is the next pair's document, so the loss starts high and every step moves it."""
    torch.manual_seed(settings.seed)
    model = BiEncoder(pooling=settings.pooling, max_length=settings.max_length, shared=False)
    freeze_lower_layers(model.query_tower, settings.train_top_layers)
    toy = load_beir("toy", path=TOY_PATH)
    rows = {doc_id: i for i, doc_id in enumerate(toy.corpus)}
    judged = [(q, d) for q, docs in toy.qrels.items() for d, g in docs.items() if g > 0]
    d_emb = model.encode_documents([document_text(doc) for doc in toy.corpus.values()], show_progress=False)
    log = train_query_tower(
        model, [toy.queries[q] for q, _ in judged], [rows[d] for _, d in judged[1:] + judged[:1]], d_emb,
        steps=steps, batch_size=4, lr=settings.lr, warmup=1, temperature=settings.temperature,
        seed=settings.seed, log_every=1, show_progress=False,
    )
    return [round(entry["loss"], 5) for entry in log]


def _toy_groups(negatives: int = 3) -> list[tuple[str, str, list[str]]]:
    """Toy groups for the training probes: each judged pair with ``negatives`` other toy documents."""
    toy = load_beir("toy", path=TOY_PATH)
    texts = [document_text(doc) for doc in toy.corpus.values()]
    pairs = training_pairs(toy)
    return [(q, d, [t for t in texts if t != d][i % 4 :: 4][:negatives]) for i, (q, d) in enumerate(pairs)]


def small_cross_encoder_training_probe(settings: SmallCrossEncoderRecipe = SMALL_CROSS_ENCODER,
                                       steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on toy groups: the teacher checkpoint's logits as
    targets, the recipe's student, loss and learning rates, 2 groups a step."""
    torch.manual_seed(settings.seed)
    teacher = load_cross_encoder(checkpoints.CHECKPOINTS / settings.teacher)
    groups = _toy_groups(settings.negatives)
    targets = score_groups(teacher, groups, cache=True, show_progress=None)
    model = small_cross_encoder(teacher, settings.layers, settings.max_length)
    freeze_lower_layers(model.encoder, settings.layers)
    log = train_groups(
        model, groups, settings.loss, targets, steps=steps, groups_per_step=2, lr=settings.lr,
        head_lr=settings.head_lr, warmup=1, seed=settings.seed, log_every=1, show_progress=False,
    )
    return [round(entry["loss"], 5) for entry in log]


def distilled_bi_encoder_training_probe(settings: DistilledBiEncoderRecipe = DISTILLED_BI_ENCODER,
                                        steps: int = 3) -> list[float]:
    """The first ``steps`` losses of the recipe's training on toy groups: the teacher checkpoint's logits as
    targets, the recipe's student, frozen layers, loss and scale, 2 groups a step."""
    torch.manual_seed(settings.seed)
    groups = _toy_groups(settings.negatives)
    targets = score_groups(load_cross_encoder(checkpoints.CHECKPOINTS / settings.teacher), groups, cache=True,
                           show_progress=None)
    model, _ = distilled_student(settings)
    log = train_groups(
        model, groups, settings.loss, targets,
        lambda chosen: distill.bi_encoder_group_scores(model, chosen, settings.scale), steps=steps,
        groups_per_step=2, lr=settings.lr, warmup=1, seed=settings.seed, log_every=1, show_progress=False,
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
