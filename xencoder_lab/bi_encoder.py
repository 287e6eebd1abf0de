"""The bi-encoder: queries and documents embedded apart, scored by a dot product (built in notebook 02).

A tower (a Hugging Face encoder) turns a text into token vectors h_1..h_L; pooling turns those into one
vector; L2 normalisation makes the dot product a cosine:

    e(x)     = normalize(pool(tower(x)))                    shape (D,)
    s(q, d)  = e_q(q) . e_d(d)                              = cos(q, d) when normalised

Documents are embedded once, ahead of time; at query time only the query goes through a tower.

>>> model = BiEncoder(max_length=32)
>>> q_emb = model.encode_queries(["Does aspirin prevent heart attacks?"])
>>> d_emb = model.encode_documents(["Low-dose aspirin cut second heart attacks.", "Measles vaccine works."])
>>> q_emb.shape, d_emb.dtype
((1, 384), dtype('float32'))
>>> BiEncoder.score(q_emb, d_emb).argmax()
np.int64(0)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .batching import eval_mode, run_sorted
from .cache import load_or_compute
from .data import Dataset, document_text
from .models import backend_parts, load_encoder, model_fingerprint

POOLINGS = ("cls", "pooler", "mean")


def pool(last_hidden_state, attention_mask, pooler_output=None, how: str = "mean") -> torch.Tensor:
    """One vector per text from the outputs of one forward pass; h: token vectors, m: attention mask.

        cls     h_1                           the [CLS] token's last hidden state
        pooler  tanh(W h_1 + b)               the model's ``pooler_output`` (in BERT, a layer pre-trained
                                              for next-sentence prediction, which mean-pooled fine-tuning
                                              never trains)
        mean    sum_t m_t h_t / sum_t m_t     the average of the real tokens (padding has m_t = 0)

    Call it three times on the same outputs to compare poolings without three forward passes.

    Args:
        last_hidden_state: token vectors (B, L, D).
        attention_mask: (B, L), 1 for real tokens, 0 for padding.
        pooler_output: the model's (B, D) ``pooler_output``; needed only for ``how="pooler"``.
        how: ``"cls"``, ``"pooler"`` or ``"mean"``.

    Returns:
        (B, D) tensor, one vector per text.

    Raises:
        ValueError: wrong shapes, an unknown ``how``, or ``"pooler"`` without a ``pooler_output``.

    >>> h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])    # (B=1, L=3, D=2); the last is padding
    >>> mask = torch.tensor([[1, 1, 0]])
    >>> pool(h, mask, how="mean"), pool(h, mask, how="cls")
    (tensor([[2., 3.]]), tensor([[1., 2.]]))
    """
    if last_hidden_state.ndim != 3 or attention_mask.shape != last_hidden_state.shape[:2]:
        raise ValueError(f"need token vectors (B, L, D) and a mask (B, L), got {tuple(last_hidden_state.shape)} "
                         f"and {tuple(attention_mask.shape)}.")
    if how == "cls":
        return last_hidden_state[:, 0]  # (B, D)
    if how == "pooler":
        if pooler_output is None:
            raise ValueError("this model has no pooler_output: use pooling='cls' or 'mean'.")
        return pooler_output  # (B, D)
    if how == "mean":
        mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, L, 1)
        return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, D)
    raise ValueError(f"unknown pooling {how!r}: use one of {POOLINGS}.")


def encode_texts(
    texts: Sequence[str],
    tokenizer,
    embed: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
    max_length: int = 256,
    batch_size: int = 32,
    show_progress: bool | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """``embed(batch)`` over all texts, as float32 (N, D) in the order given.

    Every text is tokenized once, without padding, and cut at ``max_length`` tokens. Texts are then sorted by
    their token count, longest first, so each batch is padded only to its own longest text (dynamic padding)
    and holds texts of nearly the same length; rows are put back in the original order
    (``batching.run_sorted``). An empty text is embedded as sentence-transformers embeds it: from its
    ``[CLS]`` and ``[SEP]`` tokens alone. To get several poolings from one forward pass, let ``embed`` return them side
    by side (``torch.cat`` on dim 1) and split the columns afterwards.

    Args:
        texts: the texts, a list (not one string).
        tokenizer: the Hugging Face tokenizer of the model.
        embed: maps one padded batch of token ids (a dict of (B, L) tensors) to embeddings (B, D).
        max_length: tokens kept per text.
        batch_size: texts per forward pass.
        show_progress: show a progress bar; ``None``: only for long inputs.
        device: where the batches go.

    Returns:
        (N, D) float32 numpy array, row i for ``texts[i]``.

    Raises:
        TypeError: one string instead of a list, or a text that is not a str.
        ValueError: no texts.
    """
    if isinstance(texts, str):
        raise TypeError("give a list of texts, not one string: e.g. encode_queries([text]).")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a str: use data.document_text(doc).")
    if len(texts) == 0:
        raise ValueError("no texts to encode.")
    features = tokenizer(list(texts), truncation=True, max_length=max_length)  # token ids, no padding yet
    return run_sorted(features, embed, tokenizer.pad_token_id, batch_size, show_progress, device)


class BiEncoder(torch.nn.Module):
    """A query tower and a document tower (the same module when ``shared``), pooling, L2 normalisation.

    ``shared=False`` gives documents their own tower, a deep copy of the same starting weights: twice the
    parameters, twice the memory and optimizer state. It helps when queries and documents look very different
    (short questions against long abstracts, code against docstrings) and there is enough training data to
    teach two towers; before training both towers give the same embeddings.

    Args:
        name: base model, a folder or hub id (default: ``models.resolve_model()``).
        pooling: ``"mean"``, ``"cls"`` or ``"pooler"`` (see ``pool``).
        shared: one tower for queries and documents; ``False`` gives documents a copy of their own.
        max_length: tokens kept per text, at most the model's limit.
        normalize: L2-normalise embeddings, so dot products are cosines.
        device: where to run it (default: ``models.get_device()``).

    Raises:
        ValueError: an unknown pooling or a ``max_length`` beyond the model's limit.
    """

    def __init__(
        self,
        name: str | None = None,
        pooling: str = "mean",
        shared: bool = True,
        max_length: int = 256,
        normalize: bool = True,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}: use one of {POOLINGS}.")
        self.tokenizer, self.query_tower = load_encoder(name, device)
        limit = self.query_tower.config.max_position_embeddings
        if not 1 <= max_length <= limit:
            raise ValueError(f"max_length={max_length}, but this model reads at most {limit} tokens.")
        self.doc_tower = self.query_tower if shared else copy.deepcopy(self.query_tower)
        self.pooling, self.shared, self.max_length, self.normalize = pooling, shared, max_length, normalize
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dim(self) -> int:
        return self.query_tower.config.hidden_size

    def tokenize(self, texts: Sequence[str], tower: str = "query") -> Mapping[str, torch.Tensor]:
        """Token ids for one batch, padded to its longest text and cut at ``max_length``, on the model's device.
        Both towers read the same tokens (``tower`` is for models that mark queries and documents: ColBERT).

        Args:
            texts: B texts.
            tower: ``"query"`` or ``"document"``; the same tokens either way here.

        Returns:
            the tokenizer's ``{"input_ids", "attention_mask", ...}``, each a (B, L) tensor.
        """
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)

    def forward(self, batch: Mapping[str, torch.Tensor], tower: str = "query") -> torch.Tensor:
        """Embeddings (B, D) of a tokenized batch through the ``"query"`` or ``"document"`` tower (with grads).

        Args:
            batch: the output of ``tokenize``, (B, L) tensors.
            tower: ``"query"`` or ``"document"``.

        Returns:
            (B, D) tensor, L2-normalised when ``normalize``.

        Raises:
            ValueError: a batch without (B, L) ``input_ids``, or an unknown tower.
        """
        if batch["input_ids"].ndim != 2:
            raise ValueError("batch: give the output of tokenize(texts), with input_ids of shape (B, L).")
        if tower not in ("query", "document"):
            raise ValueError(f"tower={tower!r}: use 'query' or 'document'.")
        out = (self.query_tower if tower == "query" else self.doc_tower)(**batch)
        pooler_output = getattr(out, "pooler_output", None)  # (B, D); None for models without a pooler
        emb = pool(out.last_hidden_state, batch["attention_mask"], pooler_output, self.pooling)  # (B, D)
        return F.normalize(emb, dim=-1) if self.normalize else emb  # (B, D)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32, show_progress: bool | None = None):
        """Query embeddings, float32 numpy (N, D), in the order given (see ``encode_texts``).

        Args:
            texts: the queries, a list of N strings.
            batch_size: texts per forward pass.
            show_progress: show a progress bar; ``None``: only for long inputs.

        Returns:
            (N, D) float32 numpy array; (0, D) for no texts.

        Raises:
            ValueError: an empty query.
        """
        return self._encode(texts, "query", batch_size, show_progress)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32, show_progress: bool | None = None):
        """Document embeddings, float32 numpy (N, D), in the order given (see ``encode_texts``).

        Args:
            texts: the documents' texts (``data.document_text``), a list of N strings.
            batch_size: texts per forward pass.
            show_progress: show a progress bar; ``None``: only for long inputs.

        Returns:
            (N, D) float32 numpy array; (0, D) for no texts.
        """
        return self._encode(texts, "document", batch_size, show_progress)

    def _encode(self, texts, tower, batch_size, show_progress) -> np.ndarray:
        if not isinstance(texts, str) and len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if tower == "query" and not isinstance(texts, str):
            empty = [i for i, text in enumerate(texts) if isinstance(text, str) and not text.strip()]
            if empty:
                raise ValueError(f"query {empty[0]} is empty: give each query at least one word.")
        with eval_mode(self):  # no dropout while encoding
            return encode_texts(
                texts, self.tokenizer, lambda batch: self(batch, tower), self.max_length, batch_size, show_progress,
                self.device,
            )

    def similarity(self, q_emb: torch.Tensor, d_emb: torch.Tensor) -> torch.Tensor:
        """Training scores (Q, N) of a batch: q_emb @ d_emb.T, with grads (a poly-encoder overrides it).

        Args:
            q_emb: query embeddings (Q, D) from ``forward``.
            d_emb: document embeddings (N, D).

        Returns:
            (Q, N) tensor.
        """
        return q_emb @ d_emb.T  # (Q, N)

    @staticmethod
    def score(q_emb, d_emb):
        """Scores (Q, N): s = q_emb @ d_emb.T, dot products, which are cosines when both are normalised.

        Args:
            q_emb: query embeddings (Q, D), numpy or torch.
            d_emb: document embeddings (N, D), of the same kind.

        Returns:
            (Q, N) scores, row i for query i.

        Raises:
            ValueError: the shapes do not fit.

        >>> BiEncoder.score(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.6, 0.8]]))
        array([[1. , 0.6]])
        """
        if q_emb.ndim != 2 or d_emb.ndim != 2 or q_emb.shape[1] != d_emb.shape[1]:
            raise ValueError(f"need q_emb (Q, D) and d_emb (N, D), got {q_emb.shape} and {d_emb.shape}.")
        return q_emb @ d_emb.T  # (Q, N)


CORPUS_CACHE = "corpus_embeddings"  # the disk-cache namespace of ``encode_corpus``


def corpus_cache_parts(model: BiEncoder, ds: Dataset) -> dict:
    """What ``encode_corpus`` keys its cache entry by: the document tower's weight fingerprint, the dataset's
    name, a digest of its document ids and texts, the settings that change an embedding, and the backend of a
    model that does not run in PyTorch."""
    ids = list(ds.corpus)
    texts = [document_text(ds.corpus[doc_id]) for doc_id in ids]
    return {
        "model": model_fingerprint(model.doc_tower),
        "dataset": ds.name,
        "docs": hashlib.sha256(json.dumps([ids, texts]).encode()).hexdigest()[:16],
        "pooling": model.pooling,
        "max_length": model.max_length,
        "normalize": model.normalize,
        **backend_parts(model),
    }


def encode_corpus(
    model: BiEncoder,
    ds: Dataset,
    batch_size: int = 32,
    show_progress: bool | None = None,
    cache_root: str | os.PathLike | None = None,
) -> np.ndarray:
    """Embeddings (N, D) of ``ds.corpus`` in corpus order, computed once and then read from the disk cache.

    The key (``corpus_cache_parts``) holds the document tower's weights and the corpus itself, so a fine-tuned
    model or a changed corpus never gets stale embeddings. Empty documents (no title, no text) are embedded too,
    as sentence-transformers would (from [CLS] and [SEP] alone); the rankings built over them put them last and
    warn (``retrieval.search_empty_last``, ``data.empty_documents``).

    Args:
        model: the bi-encoder; its document tower embeds.
        ds: the dataset whose corpus to embed.
        batch_size: texts per forward pass.
        show_progress: show a progress bar; ``None``: only for long inputs.
        cache_root: the disk cache's folder (default: ``XLAB_CACHE``).

    Returns:
        (N, D) float32 numpy array, row i for the i-th document id of ``ds.corpus``.
    """
    ids = list(ds.corpus)
    texts = [document_text(ds.corpus[doc_id]) for doc_id in ids]

    def compute() -> np.ndarray:
        return model.encode_documents(texts, batch_size, show_progress)

    return load_or_compute(CORPUS_CACHE, corpus_cache_parts(model, ds), compute, root=cache_root)
