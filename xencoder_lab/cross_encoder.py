"""The cross-encoder: query and document read together, one relevance logit per pair (built in notebook 04).

The pair goes through one transformer as ``[CLS] query [SEP] document [SEP]``, token type 0 for the query and
1 for the document, so every query token attends to every document token. A linear head on the ``[CLS]``
vector gives a *logit* (any real number); ``sigmoid(logit)`` is a probability, for display only: training uses
``BCEWithLogitsLoss`` (or a softmax over a group), which works on logits and is numerically safe.

    logit(q, d) = w . h_[CLS] + b                                   plain head
    logit(q, d) = w . h_[CLS] + b + c * a * cos(mean_q(h), mean_d(h))   warm start (``cosine_scale=a``)

``c`` (``cosine_weight``, 1 unless a training run hands the score over to the head) lets a logit be taken apart:
``c = 0`` gives the head alone.

A head trained from scratch scores at chance for hundreds of steps. The warm start begins from what the
encoder already knows: ``mean_q`` and ``mean_d`` average the query's and the document's token vectors *of the
joint pass*, their cosine times a learned scale ``a`` is the starting score, and the head (initialised to 0)
learns the rest.

A pair longer than ``max_length`` is cut from the end of the longer text, a token at a time
(``truncation="longest_first"``): a query shorter than half of ``max_length`` (every SciFact claim) is read
whole and only the document is cut; a longer query is cut too, where ``"only_second"`` could not fit the pair.

>>> model = CrossEncoder(max_length=64, cosine_scale=20.0)   # warm start: meaningful before any training
>>> logits = model.score("Aspirin prevents heart attacks.", ["Low-dose aspirin cut second heart attacks.",
...                                                          "Measles vaccine works."])
>>> logits.shape, bool(logits[0] > logits[1])
((2,), True)
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .batching import eval_mode, run_sorted
from .bi_encoder import pool
from .cache import load_or_compute_rows
from .data import Dataset, document_text
from .models import backend_parts, load_encoder, model_fingerprint


class CrossEncoder(torch.nn.Module):
    """An encoder over ``[CLS] q [SEP] d [SEP]`` and a linear head on ``[CLS]`` (plus the warm-start cosine).

    Args:
        name: base model, a folder or hub id (default: ``models.resolve_model()``).
        max_length: tokens kept per pair; the longer text is cut first (see the module docstring).
        cosine_scale: ``a``, the warm start's initial scale (head at 0); None: a plain head, randomly initialised.
        device: where to run it (default: ``models.get_device()``).
    """

    def __init__(
        self,
        name: str | None = None,
        max_length: int = 256,
        cosine_scale: float | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.tokenizer, self.encoder = load_encoder(name, device)
        self.max_length = max_length
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
        self.scale = None
        if cosine_scale is not None:  # warm start: the cosine carries the score at first, the head starts at 0
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)
            self.scale = torch.nn.Parameter(torch.tensor(float(cosine_scale)))
        self.cosine_weight = 1.0  # c: the weight of the warm-start term in the logit (a handover lowers it to 0)
        self.to(self.encoder.device).eval()

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def features(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, list]:
        """Token ids of each pair, unpadded, cut to ``max_length`` (see the module docstring).

        An empty document is scored (from the query alone, as sentence-transformers does); an empty query
        is a mistake and raises.

        Args:
            queries: one query per pair.
            docs: one document text per pair.

        Returns:
            the tokenizer's ``{"input_ids", "token_type_ids", "attention_mask"}``, a list per pair.

        Raises:
            ValueError: not one query per document, or an empty query.
        """
        if len(queries) != len(docs):
            raise ValueError(f"got {len(queries)} queries but {len(docs)} documents: one of each per pair.")
        for i, q in enumerate(queries):
            if not q.strip():
                raise ValueError(f"pair {i} has an empty query: give each query at least one word.")
        return self.tokenizer(list(queries), list(docs), truncation=True, max_length=self.max_length)

    def tokenize(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, torch.Tensor]:
        """A padded batch of pairs on the model's device, for training.

        Args:
            queries: B queries, one per pair.
            docs: B document texts.

        Returns:
            ``{"input_ids", "token_type_ids", "attention_mask"}``, each a (B, L) tensor.
        """
        return self.tokenizer(
            list(queries), list(docs), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        ).to(self.device)

    def parts(self, batch) -> torch.Tensor:
        """The two terms of each pair's logit, from one pass: ``[:, 0]`` the head's ``w . h_[CLS] + b``,
        ``[:, 1]`` the warm start's ``a * cos(mean_q(h), mean_d(h))`` (0 for a plain head). The logit is
        ``parts[:, 0] + c * parts[:, 1]``.

        Args:
            batch: the output of ``tokenize``, (B, L) tensors with ``token_type_ids``.

        Returns:
            (B, 2) tensor, with grads.

        Raises:
            ValueError: a batch without (B, L) ``input_ids`` or without ``token_type_ids``.
        """
        if batch["input_ids"].ndim != 2 or "token_type_ids" not in batch:
            raise ValueError("batch: give the output of tokenize(queries, docs): input_ids (B, L) and token_type_ids.")
        h = self.encoder(**batch).last_hidden_state  # (B, L, D)
        head = self.head(h[:, 0]).squeeze(-1)  # (B,)
        warm = torch.zeros_like(head)
        if self.scale is not None:
            mask, segment = batch["attention_mask"], batch["token_type_ids"]  # (B, L), (B, L)
            q_vec = pool(h, mask * (segment == 0), how="mean")  # (B, D)
            d_vec = pool(h, mask * (segment == 1), how="mean")  # (B, D)
            warm = self.scale * F.cosine_similarity(q_vec, d_vec, dim=-1)
        return torch.stack([head, warm], dim=1)

    def forward(self, batch) -> torch.Tensor:
        """Logits (B,) for a batch of tokenized pairs: ``parts(batch)``, the warm term weighed by ``c``.

        Args:
            batch: the output of ``tokenize``, (B, L) tensors with ``token_type_ids``.

        Returns:
            (B,) tensor of logits, with grads.
        """
        both = self.parts(batch)  # (B, 2)
        return both[:, 0] + self.cosine_weight * both[:, 1]

    def score(
        self,
        queries: str | Sequence[str],
        docs: Sequence[str],
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Logits (P,) for pairs (one query for all ``docs``, or one query per doc), batched by length.

        Unlike scoring one pair at a time, pairs of similar length share a batch, padded only to its longest.

        Args:
            queries: one query for every document, or a list of P queries, one per document.
            docs: P document texts.
            batch_size: pairs per forward pass.
            show_progress: show a progress bar; ``None``: only for long inputs.

        Returns:
            (P,) float32 numpy logits, in the order of ``docs``.

        Raises:
            ValueError: not one query per document, or an empty query.
        """
        if isinstance(queries, str):
            queries = [queries] * len(docs)
        if len(docs) == 0:
            return np.zeros(0, dtype=np.float32)
        with eval_mode(self):
            features = self.features(queries, docs)
            return run_sorted(features, self, self.tokenizer.pad_token_id, batch_size, show_progress, self.device,
                              desc="scoring pairs")

    def score_parts(self, queries: str | Sequence[str], docs: Sequence[str], batch_size: int = 32,
                    show_progress: bool | None = False) -> np.ndarray:
        """``score``, taken apart: (P, 2) float32, the head's term and the warm start's (``parts``) for each pair.

        >>> model = CrossEncoder(max_length=64, cosine_scale=20.0)   # the head starts at 0: all from the cosine
        >>> both = model.score_parts("Aspirin prevents heart attacks.", ["Aspirin cut heart attacks."])
        >>> both.shape, float(both[0, 0]), bool(abs(both.sum() - model.score("Aspirin prevents heart attacks.",
        ...                                                          ["Aspirin cut heart attacks."])[0]) < 1e-4)
        ((1, 2), 0.0, True)
        """
        if isinstance(queries, str):
            queries = [queries] * len(docs)
        if len(docs) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        with eval_mode(self):
            return run_sorted(self.features(queries, docs), self.parts, self.tokenizer.pad_token_id, batch_size,
                              show_progress, self.device, desc="scoring pairs")


def small_cross_encoder(teacher: CrossEncoder, layers: int, max_length: int | None = None) -> CrossEncoder:
    """A student cross-encoder: a copy of ``teacher`` with its bottom ``layers`` transformer layers, its head and
    its warm-start scale, reading at most ``max_length`` tokens (the teacher's by default). The teacher is not
    changed. Fewer layers and shorter inputs make every pair cheaper, about ``(6 / layers) x (256 / max_length)``
    times for all-MiniLM-L6-v2 at 256 tokens.

    Args:
        teacher: the cross-encoder to copy.
        layers: transformer layers kept, from the bottom, 1 to the teacher's count.
        max_length: the student's token limit; None: the teacher's.

    Returns:
        a new ``CrossEncoder``.

    Raises:
        ValueError: ``layers`` out of range.

    >>> student = small_cross_encoder(CrossEncoder(max_length=64, cosine_scale=20.0), layers=2, max_length=32)
    >>> len(student.encoder.encoder.layer), student.max_length
    (2, 32)
    """
    total = len(teacher.encoder.encoder.layer)
    if not 1 <= layers <= total:
        raise ValueError(f"layers={layers}, but the teacher has {total}: keep between 1 and {total}.")
    student = copy.deepcopy(teacher)
    student.encoder.encoder.layer = torch.nn.ModuleList(list(student.encoder.encoder.layer)[:layers])
    student.encoder.config.num_hidden_layers = layers
    student.max_length = max_length or teacher.max_length
    return student


PAIR_CACHE = "cross_encoder_pairs"  # the disk cache's folder for pair logits


def pair_cache_parts(model: CrossEncoder) -> dict:
    """What a cached logit depends on besides its two texts: the weights, how the pair is cut, and the backend
    of a model that does not run in PyTorch, and the warm term's weight ``c`` when it is not 1 (mid-handover)."""
    weight = getattr(model, "cosine_weight", 1.0)
    return {"model": model_fingerprint(model), "max_length": model.max_length, "truncation": "longest_first",
            **backend_parts(model), **({"cosine_weight": weight} if weight != 1.0 else {})}


def pair_key(query: str, doc: str) -> str:
    """The cache key of one pair: its two texts, as the model reads them.

    >>> pair_key("a claim", "an abstract")
    'a claim\\x00an abstract'
    """
    return query + "\0" + doc


def group_pairs(groups: Sequence[tuple[str, str, Sequence[str]]]) -> tuple[list[str], list[str], int]:
    """Flatten groups ``(query, positive, [negatives])`` into pairs: ``(queries, docs, width)``, each group's
    positive first, ``width = 1 + negatives`` pairs per group (the same for every group).

    >>> group_pairs([("q1", "p1", ["n1", "n2"]), ("q2", "p2", ["n3", "n4"])])
    (['q1', 'q1', 'q1', 'q2', 'q2', 'q2'], ['p1', 'n1', 'n2', 'p2', 'n3', 'n4'], 3)
    """
    widths = {1 + len(negs) for _, _, negs in groups}
    if len(widths) != 1:
        raise ValueError(f"every group needs the same number of negatives, got group widths {sorted(widths)}.")
    queries = [q for q, _, negs in groups for _ in range(1 + len(negs))]
    docs = [d for _, pos, negs in groups for d in (pos, *negs)]
    return queries, docs, widths.pop()


def group_logits(model: CrossEncoder, groups: Sequence[tuple[str, str, Sequence[str]]]) -> torch.Tensor:
    """Logits (G, 1 + negatives) of each group's pairs, the positive in column 0, with gradients: one padded
    batch through ``model.forward``, for training (``training.train_groups``)."""
    queries, docs, width = group_pairs(groups)
    return model(model.tokenize(queries, docs)).view(len(groups), width)  # (G, W)


def score_groups(
    model: CrossEncoder,
    groups: Sequence[tuple[str, str, Sequence[str]]],
    batch_size: int = 32,
    cache: bool = False,
    cache_root=None,
    show_progress: bool | None = False,
) -> torch.Tensor:
    """Logits (G, 1 + negatives) of each group's pairs, the positive in column 0, without gradients
    (``model.score``: length-sorted batches): what ``losses.listwise_loss`` takes, or a teacher's targets.

    Args:
        model: the cross-encoder.
        groups: ``(query, positive, [negatives])``, each with the same number of negatives.
        batch_size: pairs per forward pass.
        cache: keep each pair's logit in the disk cache under ``score_candidates``'s keys, so a rerun reads
            them back (a teacher scores thousands of pairs once).
        cache_root: the cache folder (default: ``cache.cache_dir()``).
        show_progress: a progress bar (None: only for long runs).

    Returns:
        a float32 tensor (G, W).

    >>> model = CrossEncoder(max_length=32, cosine_scale=20.0)
    >>> score_groups(model, [("Aspirin prevents heart attacks.", "Aspirin cut heart attacks.", ["Measles."])]).shape
    torch.Size([1, 2])
    """
    queries, docs, width = group_pairs(groups)
    if not cache:
        return torch.from_numpy(model.score(queries, docs, batch_size, show_progress)).view(len(groups), width)

    def compute(rows: list[int]):
        return model.score([queries[i] for i in rows], [docs[i] for i in rows], batch_size, show_progress)

    keys = [pair_key(q, d) for q, d in zip(queries, docs)]
    logits = load_or_compute_rows(PAIR_CACHE, pair_cache_parts(model), keys, compute, root=cache_root)  # (G * W,)
    return torch.as_tensor(logits, dtype=torch.float32).view(len(groups), width)


def score_candidates(
    model: CrossEncoder,
    ds: Dataset,
    runs: Sequence[dict[str, list[str]]],
    depth: int,
    batch_size: int = 32,
    show_progress=None,
    cache: bool = True,
    cache_root=None,
) -> dict[str, dict[str, float]]:
    """``{qid: {doc_id: logit}}`` for every pair in the top ``depth`` of any ranking in ``runs``.

    Each pair is scored once and kept in the disk cache (``cache.load_or_compute_rows``), keyed by the model's
    weights, its ``max_length`` and the pair's two texts: scoring thousands of pairs takes minutes on a CPU,
    reading them back takes milliseconds, and a later call (another depth, another first stage) scores only the
    pairs not seen before. ``cache=False`` scores without the disk (e.g. a model in the middle of training).

    Args:
        model: the cross-encoder.
        ds: the dataset the query and document ids belong to; queries it lacks are skipped.
        runs: first-stage runs ``{query id: [doc ids, best first]}``; their pairs are pooled.
        depth: documents scored per query and run.
        batch_size: pairs per forward pass.
        show_progress: show a progress bar; ``None``: only for long inputs.
        cache: read and keep the logits in the disk cache.
        cache_root: the cache folder (default: ``cache.cache_dir()``).

    Returns:
        ``{query id: {doc id: logit}}``.
    """
    pairs = sorted({(q, d) for run in runs for q in run if q in ds.queries for d in run[q][:depth]})
    queries = [ds.queries[q] for q, _ in pairs]
    docs = [document_text(ds.corpus[d]) for _, d in pairs]

    def compute(rows: list[int]) -> np.ndarray:
        return model.score([queries[i] for i in rows], [docs[i] for i in rows], batch_size, show_progress)

    if cache:
        keys = [pair_key(q, d) for q, d in zip(queries, docs)]
        logits = load_or_compute_rows(PAIR_CACHE, pair_cache_parts(model), keys, compute, root=cache_root)  # (P,)
    else:
        logits = compute(list(range(len(pairs))))  # (P,)
    scores: dict[str, dict[str, float]] = {}
    for (q, d), logit in zip(pairs, logits.tolist()):
        scores.setdefault(q, {})[d] = logit
    return scores


def rerank(run: dict[str, list[str]], scores: dict[str, dict[str, float]], depth: int) -> dict[str, list[str]]:
    """Order the top ``depth`` of each ranking by ``scores`` (highest first, ties in first-stage order); the
    rest keep their order. The one reranking step of the course: ``pipeline.Pipeline`` uses it for one query
    and for a whole query set.

    Args:
        run: ``{query id: [doc ids, best first]}``.
        scores: ``{query id: {doc id: score}}``, covering each query's top ``depth``.
        depth: documents reordered per query.

    Returns:
        ``{query id: [doc ids]}``, the reranked run.

    >>> rerank({"q": ["a", "b", "c"]}, {"q": {"a": 0.1, "b": 2.0}}, depth=2)
    {'q': ['b', 'a', 'c']}
    """
    return {
        q: sorted(ranking[:depth], key=lambda d: -scores[q][d]) + ranking[depth:] for q, ranking in run.items()
    }
