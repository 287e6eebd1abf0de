"""The cross-encoder: query and document read together, one relevance logit per pair (built in notebook 04).

The pair goes through one transformer as ``[CLS] query [SEP] document [SEP]``, token type 0 for the query and
1 for the document, so every query token attends to every document token. A linear head on the ``[CLS]``
vector gives a *logit* (any real number); ``sigmoid(logit)`` is a probability, for display only: training uses
``BCEWithLogitsLoss`` (or a softmax over a group), which works on logits and is numerically safe.

    logit(q, d) = w . h_[CLS] + b                                   plain head
    logit(q, d) = w . h_[CLS] + b + a * cos(mean_q(h), mean_d(h))   warm start (``cosine_scale=a``)

A head trained from scratch scores at chance for hundreds of steps. The warm start begins from what the
encoder already knows: ``mean_q`` and ``mean_d`` average the query's and the document's token vectors *of the
joint pass*, their cosine times a learned scale ``a`` is the starting score, and the head (initialised to 0)
learns the rest.

A pair longer than ``max_length`` is cut from the end, longest part first (``truncation=True``, as
sentence-transformers' ``CrossEncoder`` does): the query is read whole while it fits in about half of
``max_length``; a longer query and the document are both cut.

>>> model = CrossEncoder(max_length=64, cosine_scale=20.0)   # warm start: meaningful before any training
>>> logits = model.score("Aspirin prevents heart attacks.", ["Low-dose aspirin cut second heart attacks.",
...                                                          "Measles vaccine works."])
>>> logits.shape, bool(logits[0] > logits[1])
((2,), True)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .bi_encoder import pool, run_sorted
from .models import load_encoder


class CrossEncoder(torch.nn.Module):
    """An encoder over ``[CLS] q [SEP] d [SEP]`` and a linear head on ``[CLS]`` (plus the warm-start cosine)."""

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
        self.to(self.encoder.device).eval()

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def features(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, list]:
        """Token ids of each pair, unpadded, cut to ``max_length`` longest part first."""
        if len(queries) != len(docs):
            raise ValueError(f"got {len(queries)} queries but {len(docs)} documents: one of each per pair.")
        for i, (q, d) in enumerate(zip(queries, docs)):
            if not q.strip() or not d.strip():
                raise ValueError(f"pair {i} has an empty {'query' if not q.strip() else 'document'}.")
        return self.tokenizer(list(queries), list(docs), truncation=True, max_length=self.max_length)

    def tokenize(self, queries: Sequence[str], docs: Sequence[str]) -> dict[str, torch.Tensor]:
        """A padded batch of pairs on the model's device, for training."""
        return self.tokenizer(
            list(queries), list(docs), truncation=True, max_length=self.max_length,
            padding=True, return_tensors="pt",
        ).to(self.device)

    def forward(self, batch) -> torch.Tensor:
        """Logits (B,) for a batch of tokenized pairs."""
        assert batch["input_ids"].ndim == 2 and "token_type_ids" in batch, "batch: tokenize(queries, docs)"
        h = self.encoder(**batch).last_hidden_state  # (B, L, D)
        logits = self.head(h[:, 0]).squeeze(-1)  # (B,)
        if self.scale is not None:
            mask, segment = batch["attention_mask"], batch["token_type_ids"]  # (B, L), (B, L)
            q_vec = pool(h, mask * (segment == 0), how="mean")  # (B, D)
            d_vec = pool(h, mask * (segment == 1), how="mean")  # (B, D)
            logits = logits + self.scale * F.cosine_similarity(q_vec, d_vec, dim=-1)
        return logits

    def score(
        self,
        queries: str | Sequence[str],
        docs: Sequence[str],
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Logits (P,) for pairs (one query for all ``docs``, or one query per doc), batched by length.

        Unlike scoring one pair at a time, pairs of similar length share a batch, padded only to its longest.
        """
        if isinstance(queries, str):
            queries = [queries] * len(docs)
        if len(docs) == 0:
            return np.zeros(0, dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            features = self.features(queries, docs)
            return run_sorted(features, self, self.tokenizer.pad_token_id, batch_size, show_progress, self.device)
        finally:
            self.train(was_training)


def rerank_run(
    model: CrossEncoder, ds, run: dict[str, list[str]], depth: int, batch_size: int = 32, show_progress=None
) -> dict[str, list[str]]:
    """Rerank the top ``depth`` of each ranking in ``run`` by cross-encoder logit; the rest keep their order.

    All pairs of all queries are scored in one length-sorted pass.
    """
    from .data import document_text

    qids = [q for q in ds.queries if q in run]
    pairs = [(q, d) for q in qids for d in run[q][:depth]]
    logits = model.score(
        [ds.queries[q] for q, _ in pairs], [document_text(ds.corpus[d]) for _, d in pairs], batch_size, show_progress
    )
    reranked, start = {}, 0
    for q in qids:
        top = run[q][:depth]
        order = np.argsort(-logits[start : start + len(top)], kind="stable")
        reranked[q] = [top[i] for i in order] + run[q][depth:]
        start += len(top)
    return reranked


def score_candidates(
    model: CrossEncoder,
    ds,
    runs: Sequence[dict[str, list[str]]],
    depth: int,
    batch_size: int = 32,
    show_progress=None,
    cache_root=None,
) -> dict[str, dict[str, float]]:
    """``{qid: {doc_id: logit}}`` for every pair in the top ``depth`` of any ranking in ``runs``.

    A pair two first stages both retrieve is scored once. The logits are kept in the disk cache
    (``cache.load_or_compute``), keyed by the model's weights, its ``max_length`` and the pairs' texts: scoring
    thousands of pairs takes minutes on a CPU, reading them back takes milliseconds, and other weights or other
    texts never get these scores.
    """
    import hashlib

    from .cache import load_or_compute
    from .data import document_text
    from .models import model_fingerprint

    pairs = sorted({(q, d) for run in runs for q in run if q in ds.queries for d in run[q][:depth]})
    queries = [ds.queries[q] for q, _ in pairs]
    docs = [document_text(ds.corpus[d]) for _, d in pairs]
    texts = hashlib.sha256("\0".join(t for pair in zip(queries, docs) for t in pair).encode()).hexdigest()
    parts = {"model": model_fingerprint(model), "max_length": model.max_length, "pairs": texts, "n": len(pairs)}
    logits = load_or_compute(
        "cross_encoder_scores", parts, lambda: model.score(queries, docs, batch_size, show_progress), root=cache_root
    )  # (P,)
    scores: dict[str, dict[str, float]] = {}
    for (q, d), logit in zip(pairs, logits.tolist()):
        scores.setdefault(q, {})[d] = logit
    return scores


def rerank(run: dict[str, list[str]], scores: dict[str, dict[str, float]], depth: int) -> dict[str, list[str]]:
    """Order the top ``depth`` of each ranking by ``scores`` (highest first); the rest keep their order.

    ``rerank_run`` does the same in one call; with ``score_candidates`` one scoring serves every depth.

    >>> rerank({"q": ["a", "b", "c"]}, {"q": {"a": 0.1, "b": 2.0}}, depth=2)
    {'q': ['b', 'a', 'c']}
    """
    return {
        q: sorted(ranking[:depth], key=lambda d: -scores[q][d]) + ranking[depth:] for q, ranking in run.items()
    }
