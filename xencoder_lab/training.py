"""Training: one loop for every model of the course, and the pieces around it (built in notebook 03).

``train`` is the loop: AdamW over the given parameter groups, a learning rate that rises linearly for
``warmup`` steps and then falls linearly to 0 (``lr_factor``), gradients clipped to norm 1.0, the mean loss
logged every ``log_every`` steps, an optional evaluation every ``evaluate_every`` steps, all seeded; ``Loop``
holds those settings, and every ``train_*`` below takes them as keyword arguments. What a step computes is the
caller's: ``step_loss(step)`` returns the loss of one batch.

- ``train_bi_encoder``: embed B queries and their B positive documents (plus B hard negatives, if given),
  score every query against every document (``model.similarity``: dot products, a poly-encoder's attention,
  ColBERT's MaxSim), ``losses.scores_loss``: for a bi-encoder, ``losses.in_batch_negatives_loss`` (notebook 03);
- ``train_query_tower``: B queries by the query tower alone against the fixed embeddings of the whole corpus,
  ``losses.corpus_softmax_loss``: documents cannot move, so no document prior is learned (notebook 03);
- ``train_groups``: score groups (query, positive, negatives), e.g. jointly with a cross-encoder, and learn
  from the labels (``losses.listwise_loss`` or binary cross-entropy on the logits, notebook 04) or from a
  teacher's scores of the same groups (distillation, notebook 06).

``corpus_queries`` makes label-free training pairs from a corpus alone (notebook 03).

>>> pairs = [("q1", "d1"), ("q2", "d1"), ("q3", "d2"), ("q1", "d3")]     # d1 twice, q1 twice
>>> list(NoDuplicatesBatchSampler(pairs, batch_size=2, seed=0))    # rows 0 and 1 apart, rows 0 and 3 apart
[[2, 0], [1, 3]]
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from .bi_encoder import BiEncoder
from .data import Dataset, document_text, sentences
from .losses import (
    corpus_softmax_loss,
    group_bce_loss,
    listwise_loss,
    margin_mse_loss,
    score_mse_loss,
    scores_loss,
    softmax_kl_loss,
)


def training_pairs(ds: Dataset) -> list[tuple[str, str]]:
    """(query text, document text) for every relevant judgment of ``ds`` (grade > 0), in qrels order.

    Args:
        ds: the training split.

    Returns:
        ``[(query text, document text)]``, one pair per relevant judgment.
    """
    return [
        (ds.queries[qid], document_text(ds.corpus[doc_id]))
        for qid, judged in ds.qrels.items()
        for doc_id, grade in judged.items()
        if grade > 0
    ]


def corpus_queries(ds: Dataset, kind: str) -> list[tuple[str, str]]:
    """Label-free (query text, document id) pairs made from the corpus alone, no judgment used: one per
    document that has what ``kind`` asks for, in corpus order.

    - ``"title"``: the document's title as the query for it;
    - ``"last sentence"``: the last sentence of its text (6 words or more; in an abstract usually the
      conclusion, the kind of sentence a claim restates). The sentence stays in the document: the query must
      find its own source among the whole corpus, as in the inverse cloze task without the removal.

    >>> from xencoder_lab.data import TOY_PATH, load_beir
    >>> toy = load_beir("toy", path=TOY_PATH)
    >>> corpus_queries(toy, "title")[0]
    ('Vitamin D and bone density', 'd01')
    >>> corpus_queries(toy, "last sentence")[2]
    ('Higher dietary calcium was not associated with fewer hip fractures in a cohort of 60,000 women.', 'd03')
    """
    if kind not in ("title", "last sentence"):
        raise ValueError(f"corpus queries of kind {kind!r}: use \"title\" or \"last sentence\".")
    pairs = []
    for doc_id, doc in ds.corpus.items():
        if kind == "title":
            query = doc.get("title", "").strip()
        else:
            query = next((s for s in reversed(sentences(doc.get("text", ""))) if len(s.split()) >= 6), "")
        if query:
            pairs.append((query, doc_id))
    return pairs


class NoDuplicatesBatchSampler:
    """Batches of row indices in which no text appears twice: no false negatives from duplicates.

    A row is a tuple of texts (query, positive[, hard negative]). Each pass over it shuffles the rows with a
    ``random.Random(seed)`` of its own, then fills each batch in that order, skipping a row that shares a text
    with the batch so far; skipped rows go to later batches. Every row appears once per pass; a batch can end
    up smaller than ``batch_size`` when the remaining rows all collide. Same seed, same batches.
    """

    def __init__(self, rows: Sequence[Sequence[str]], batch_size: int, seed: int = 0):
        if batch_size < 1 or len(rows) == 0:
            raise ValueError(f"need batch_size >= 1 and at least one row (got {batch_size} and {len(rows)}).")
        self.rows, self.batch_size, self.rng = rows, batch_size, random.Random(seed)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.rows)))
        self.rng.shuffle(order)
        while order:
            batch, seen, rest = [], set(), []
            for pos, i in enumerate(order):
                if len(batch) == self.batch_size:
                    rest.extend(order[pos:])
                    break
                texts = set(self.rows[i])
                if texts & seen:
                    rest.append(i)
                else:
                    batch.append(i)
                    seen |= texts
            yield batch
            order = rest


def passes(n: int, size: int, seed: int = 0) -> Iterator[list[int]]:
    """``size`` indices of ``range(n)`` at a time, endlessly: pass after pass over the rows, each pass in a new
    seeded shuffle (a batch that spans two passes takes the end of one and the start of the next).

    >>> batches = passes(4, size=2, seed=0)
    >>> sorted(next(batches) + next(batches))     # one pass: every row once
    [0, 1, 2, 3]
    """
    rng = random.Random(seed)
    order: list[int] = []
    while True:
        if len(order) < size:  # a new pass, reshuffled
            order.extend(rng.sample(range(n), n))
        yield [order.pop() for _ in range(size)]


def freeze_lower_layers(tower: torch.nn.Module, train_top: int) -> list[str]:
    """Freeze the embeddings and all but the top ``train_top`` transformer layers; return what still trains.

    The backward pass then stops early (faster steps) and a checkpoint needs to store only the top layers.

    Args:
        tower: a BERT-like encoder, changed in place.
        train_top: transformer layers left trainable, from the top (0: none).

    Returns:
        the names of the parameters that still train.

    Raises:
        ValueError: ``train_top`` beyond the model's layers.

    >>> from transformers import BertConfig, BertModel
    >>> tower = BertModel(BertConfig(hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=8))
    >>> sorted({name.split(".")[2] for name in freeze_lower_layers(tower, train_top=1) if name.startswith("encoder")})
    ['2']
    """
    layers = tower.encoder.layer
    if not 0 <= train_top <= len(layers):
        raise ValueError(f"train_top={train_top} but the model has {len(layers)} layers.")
    keep = {f"encoder.layer.{i}." for i in range(len(layers) - train_top, len(layers))}
    trainable = []
    for name, param in tower.named_parameters():
        param.requires_grad = any(name.startswith(prefix) for prefix in keep)
        if param.requires_grad:
            trainable.append(name)
    return trainable


def lr_factor(step: int, warmup: int, steps: int) -> float:
    """Learning-rate factor at ``step`` (from 0): up linearly for ``warmup`` steps, then down to 0 at ``steps``.

    >>> [lr_factor(s, warmup=2, steps=6) for s in range(6)]
    [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    """
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (steps - step) / max(1, steps - warmup))


@dataclass
class Loop:
    """How the training loop runs, the same for every model (``train`` reads it; every ``train_*`` takes its
    fields as keyword arguments).

    Args:
        steps: optimizer steps.
        warmup: steps of linear warm-up (default: 10% of ``steps``), then a linear decay to 0 (``lr_factor``).
        seed: seeds dropout and the batch order.
        log_every: the log gets the mean loss every ``log_every`` steps (and at the last step).
        evaluate: ``evaluate(model) -> float`` (e.g. validation nDCG@10), every ``evaluate_every`` steps.
        evaluate_every: how often to evaluate (never when None).
        on_evaluate: ``on_evaluate(model, step, value, log)`` after each evaluation, e.g. to keep the best model.
        show_progress: a progress bar over the steps.

    >>> Loop(steps=100).warmup_steps
    10
    """

    steps: int = 40
    warmup: int | None = None
    seed: int = 0
    log_every: int = 10
    evaluate: Callable[[torch.nn.Module], float] | None = None
    evaluate_every: int | None = None
    on_evaluate: Callable | None = None
    show_progress: bool = True

    @property
    def warmup_steps(self) -> int:
        return self.steps // 10 if self.warmup is None else self.warmup


def train(model: torch.nn.Module, step_loss: Callable[[int], torch.Tensor], param_groups: Sequence[dict],
          loop: Loop) -> list[dict]:
    """Train ``model`` in place for ``loop.steps`` steps of ``step_loss(step)`` (step from 1); return the log.

    AdamW over ``param_groups`` (e.g. ``[{"params": body, "lr": 2e-5}, {"params": head, "lr": 1e-3}]``), the
    learning rate scaled by ``lr_factor``, gradients clipped to norm 1.0.

    Returns:
        the log: ``{"step", "loss" (mean since the previous entry), "seconds"}`` every ``loop.log_every`` steps,
        and ``{"step", "validation", "seconds"}`` at each evaluation (see ``Loop``).
    """
    from tqdm.auto import tqdm

    steps, warmup = loop.steps, loop.warmup_steps
    torch.manual_seed(loop.seed)  # dropout
    params = [p for group in param_groups for p in group["params"]]
    optimizer = torch.optim.AdamW(param_groups)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, steps))
    log, losses, start = [], [], time.perf_counter()
    model.train()
    for step in tqdm(range(1, steps + 1), desc="training", disable=not loop.show_progress):
        loss = step_loss(step)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % loop.log_every == 0 or step == steps:
            log.append({"step": step, "loss": sum(losses) / len(losses), "seconds": time.perf_counter() - start})
            losses = []
        if loop.evaluate is not None and loop.evaluate_every and (step % loop.evaluate_every == 0 or step == steps):
            value = loop.evaluate(model)
            log.append({"step": step, "validation": value, "seconds": time.perf_counter() - start})
            if loop.on_evaluate is not None:
                loop.on_evaluate(model, step, value, log)
            model.train()
    model.eval()
    return log


def train_bi_encoder(
    model: BiEncoder,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 32,
    lr: float = 2e-5,
    temperature: float = 0.05,
    hard_negatives: Sequence[str] | None = None,
    param_groups: Sequence[dict] | None = None,
    **loop,
) -> list[dict]:
    """Train a ``BiEncoder`` in place on (query, positive) ``pairs`` with in-batch negatives; return the log.

    Batches come from ``NoDuplicatesBatchSampler``, pass after pass. Scores come from ``model.similarity`` (dot
    products for a ``BiEncoder``; a ``PolyEncoder`` and ``ColBERT`` train here too), the loss is
    ``losses.scores_loss`` at ``temperature``.

    Args:
        model: the model to train, in place.
        pairs: (query text, positive document text), one row each.
        batch_size: rows a step (a batch can be smaller when the remaining rows share texts).
        lr: AdamW's learning rate for every trainable parameter, unless ``param_groups`` are given.
        temperature: the softmax temperature (1 / scale).
        hard_negatives: ``hard_negatives[i]`` is a non-relevant document for ``pairs[i]``, added to its batch as
            an extra negative for every query.
        param_groups: AdamW's groups (default: every trainable parameter at ``lr``).
        **loop: ``Loop``'s fields (``steps``, ``warmup``, ``seed``, ``log_every``, ``show_progress``, ...).

    Returns:
        the loop's log (``train``).
    """
    loop = Loop(**loop)
    rows = list(pairs) if hard_negatives is None else [(*p, n) for p, n in zip(pairs, hard_negatives, strict=True)]
    sampler = NoDuplicatesBatchSampler(rows, batch_size, seed=loop.seed)
    batches = itertools.chain.from_iterable(itertools.repeat(sampler))  # pass after pass, reshuffled each time

    def step_loss(step: int) -> torch.Tensor:
        batch = [rows[i] for i in next(batches)]
        q_emb = model(model.tokenize([r[0] for r in batch], "query"), "query")  # (B, D); a poly-encoder: (B, m, D)
        d_texts = [r[1] for r in batch] + [r[2] for r in batch if len(r) > 2]
        d_emb = model(model.tokenize(d_texts, "document"), "document")  # (B + extra, D)
        return scores_loss(model.similarity(q_emb, d_emb), temperature)  # a BiEncoder: q_emb @ d_emb.T

    groups = param_groups or [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    return train(model, step_loss, groups, loop)


def train_query_tower(
    model: BiEncoder,
    queries: Sequence[str],
    positives: Sequence[int],
    d_emb,
    relevant: Sequence[set[int]] | None = None,
    batch_size: int = 32,
    lr: float = 2e-5,
    temperature: float = 0.05,
    **loop,
) -> list[dict]:
    """Train the query tower of a two-tower ``BiEncoder`` in place against a fixed index; return the log.

    Each step takes ``batch_size`` queries (a new shuffle every pass) and ``losses.corpus_softmax_loss``: every
    document of the corpus competes with the positive, so the documents, which cannot move, give the model no
    way to learn which of them tend to be relevant.

    Args:
        model: a ``BiEncoder(shared=False)``; its document tower is frozen here.
        queries: the training queries' texts.
        positives: ``positives[i]``, the row of ``d_emb`` relevant to ``queries[i]``.
        d_emb: (N, D), the corpus as the frozen document tower embeds it (``encode_corpus``).
        relevant: ``relevant[i]`` holds every row relevant to ``queries[i]``, masked out of its negatives.
        batch_size, lr, temperature: as in ``train_bi_encoder``.
        **loop: ``Loop``'s fields.

    Returns:
        the loop's log (``train``).
    """
    loop = Loop(**loop)
    if model.shared:
        raise ValueError("the towers are shared, so training the query tower would move the documents too: "
                         "build the model with BiEncoder(shared=False).")
    if len(queries) != len(positives) or not queries:
        raise ValueError(f"need one positive row per query, got {len(queries)} queries, {len(positives)} positives.")
    for param in model.doc_tower.parameters():
        param.requires_grad = False
    d_emb = torch.as_tensor(d_emb, dtype=torch.float32, device=model.device)  # (N, D), no gradient
    batches = passes(len(queries), batch_size, loop.seed)

    def step_loss(step: int) -> torch.Tensor:
        chosen = next(batches)
        q_emb = model(model.tokenize([queries[i] for i in chosen]), "query")  # (B, D)
        target = torch.tensor([positives[i] for i in chosen], device=model.device)  # (B,)
        exclude = None
        if relevant is not None:
            exclude = torch.zeros(len(chosen), len(d_emb), dtype=torch.bool, device=model.device)  # (B, N)
            for row, i in enumerate(chosen):
                exclude[row, list(relevant[i])] = True
        return corpus_softmax_loss(q_emb, d_emb, target, temperature, exclude)

    groups = [{"params": [p for p in model.query_tower.parameters() if p.requires_grad], "lr": lr}]
    return train(model, step_loss, groups, loop)


GROUP_LOSSES = {  # loss name -> (student scores (G, W), teacher scores (G, W) or None) -> loss
    "listwise": lambda scores, teacher: listwise_loss(scores),
    "contrastive": lambda scores, teacher: listwise_loss(scores),  # distillation's control: the labels alone
    "bce": None,  # group_bce_loss, with pos_weight
    "margin_mse": margin_mse_loss,
    "mse": score_mse_loss,
    "kl": softmax_kl_loss,
}
TEACHER_LOSSES = ("margin_mse", "mse", "kl")


def train_groups(
    model: torch.nn.Module,
    groups: Sequence[tuple[str, str, Sequence[str]]],
    loss: str = "listwise",
    teacher: torch.Tensor | None = None,
    group_scores: Callable[[Sequence], torch.Tensor] | None = None,
    groups_per_step: int = 2,
    lr: float = 2e-5,
    head_lr: float = 1e-3,
    pos_weight: float | None = None,
    handover: int | None = None,
    **loop,
) -> list[dict]:
    """Train a model that scores groups ``(query, positive, [negatives])`` in place; return the log. The one
    trainer of cross-encoders (notebook 04) and of distilled students (notebook 06).

    Each step scores ``groups_per_step`` groups, (G, W) with the positive in column 0, and takes the ``loss``:

    - from the labels: ``"listwise"`` (``losses.listwise_loss``; ``"contrastive"``, distillation's control run,
      is the same and ignores a teacher) or ``"bce"`` (``losses.group_bce_loss``, ``pos_weight`` on the positive);
    - from a ``teacher``'s scores of the same groups (G_all, W): ``"margin_mse"``, ``"mse"`` or ``"kl"``
      (``losses.margin_mse_loss``, ``score_mse_loss``, ``softmax_kl_loss``).

    ``encoder.*`` and ``query_tower.*`` learn at ``lr``, the rest (head, warm-start scale) at ``head_lr``.

    Args:
        model: the model to train, in place.
        groups: every group, each with the same number of negatives.
        loss: one of ``GROUP_LOSSES``.
        teacher: (len(groups), W) scores to learn from, for a teacher loss.
        group_scores: ``group_scores(chosen groups) -> (G, W)`` scores with gradients (default: a cross-encoder's
            ``cross_encoder.group_logits``; a bi-encoder student passes ``distill.bi_encoder_group_scores``).
        groups_per_step: groups a step.
        lr, head_lr: learning rates of the encoder and of the rest.
        pos_weight: BCE's weight of the positive (``loss="bce"`` only).
        handover: a warm start's cosine term fades out over this many steps (``cosine_weight`` 1 -> 0), then is
            removed (``scale = None``): the model is the plain ``[CLS]`` head. None: the term stays.
        **loop: ``Loop``'s fields.

    Returns:
        the loop's log (``train``).
    """
    from .cross_encoder import group_logits

    loop = Loop(**loop)
    if loss not in GROUP_LOSSES:
        raise ValueError(f"unknown loss {loss!r}: use one of {', '.join(GROUP_LOSSES)}.")
    if pos_weight is not None and loss != "bce":
        raise ValueError(f"pos_weight weighs the positive of a BCE loss, not of loss={loss!r}.")
    if loss in TEACHER_LOSSES and teacher is None:
        raise ValueError(f"loss={loss!r} learns from a teacher: give teacher=its scores of the groups (G, W).")
    if teacher is not None and loss not in (*TEACHER_LOSSES, "contrastive"):  # the control run ignores them
        raise ValueError(f"loss={loss!r} learns from the labels: teacher scores are for {', '.join(TEACHER_LOSSES)}.")
    if teacher is not None and len(teacher) != len(groups):
        raise ValueError(f"need one row of teacher scores per group, got {len(teacher)} rows for {len(groups)}.")
    if handover is not None and getattr(model, "scale", None) is None:
        raise ValueError("handover fades a warm start's cosine term out: give a model built with cosine_scale.")
    scorer = group_scores or (lambda chosen: group_logits(model, chosen))
    batches = passes(len(groups), groups_per_step, loop.seed)

    def step_loss(step: int) -> torch.Tensor:
        if handover is not None:
            model.cosine_weight = max(0.0, 1.0 - (step - 1) / handover)
        chosen = next(batches)
        scores = scorer([groups[i] for i in chosen])  # (G', W)
        if loss == "bce":
            return group_bce_loss(scores, pos_weight)
        return GROUP_LOSSES[loss](scores, None if teacher is None else teacher[chosen].to(scores.device))

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    body = [p for n, p in trainable if n.startswith(("encoder.", "query_tower."))]
    head = [p for n, p in trainable if not n.startswith(("encoder.", "query_tower.", "doc_tower."))]
    param_groups = [{"params": body, "lr": lr}] + ([{"params": head, "lr": head_lr}] if head else [])
    log = train(model, step_loss, param_groups, loop)
    if handover is not None and handover < loop.steps:  # the term is at 0 by now: the model is the head alone
        model.scale, model.cosine_weight = None, 1.0
    return log
