"""The poly-encoder: m learned codes read the query, the document picks among what they read (notebook 07).

Humeau et al. (2020). The document is one vector, as in the bi-encoder, embedded ahead of time. The query keeps
more: m learned code vectors c_1..c_m each attend over the query's token outputs h_1..h_L (padding masked
with -inf), giving m query vectors; the document's vector then attends over those m and scores the mix:

    y_i      = normalize( sum_t softmax_t(c_i . h_t) h_t )       i = 1..m      the query's m views    (m, D)
    e_d      = normalize(mean-pool(tower(d)))                                  the document, cached   (D,)
    a_i      = y_i . e_d                                                        cosines                (m,)
    s(q, d)  = sum_i softmax_i(scale * a_i) a_i                                 a soft maximum of the a_i

so the score is a cosine-sized number (between -1 and 1, like the bi-encoder's) and the in-batch loss and its
temperature carry over unchanged. With codes near zero every y_i is the mean-pooled query: at step 0 the
poly-encoder *is* the bi-encoder, and training moves it away only as far as the data pays for. ``codes=0``
keeps it there for good: mean pooling, the bi-encoder trained the same way (the control).

Cost: a query is m vectors instead of one, and scoring a document is m dot products and a softmax instead of
one dot product; an inner-product index (FAISS) cannot search it directly, so ``PolySearcher`` scores the
whole corpus, a chunk at a time.

>>> model = PolyEncoder(codes=4, max_length=32)
>>> q_vecs = model.encode_queries(["Does aspirin prevent heart attacks?"])
>>> d_emb = model.encode_documents(["Low-dose aspirin cut second heart attacks.", "Measles vaccine works."])
>>> q_vecs.shape, d_emb.shape
((1, 4, 384), (2, 384))
>>> model.score(q_vecs, d_emb).argmax()
np.int64(0)
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .bi_encoder import BiEncoder, encode_corpus, pool
from .data import Dataset
from .retrieval import top_k


def code_attention(hidden: torch.Tensor, attention_mask: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The m codes' views of each text: y_i = sum_t softmax_t(c_i . h_t) h_t, padding masked with -inf.

    Args:
        hidden: token vectors (B, L, D).
        attention_mask: (B, L), 1 for real tokens, 0 for padding.
        codes: the learned codes (m, D).

    Returns:
        (B, m, D) tensor, m views per text.

    Raises:
        ValueError: the shapes do not fit.

    >>> h = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])     # (B=1, L=3, D=2); the last is padding
    >>> code_attention(h, torch.tensor([[1, 1, 0]]), torch.tensor([[0.0, 0.0], [9.0, 0.0]])).round(decimals=3)
    tensor([[[0.5000, 0.5000],
             [1.0000, 0.0000]]])
    """
    if hidden.ndim != 3 or attention_mask.shape != hidden.shape[:2] or codes.shape[-1] != hidden.shape[-1]:
        raise ValueError(f"need hidden (B, L, D), a mask (B, L) and codes (m, D), got {tuple(hidden.shape)}, "
                         f"{tuple(attention_mask.shape)} and {tuple(codes.shape)}.")
    logits = torch.einsum("md,bld->bml", codes, hidden)  # (B, m, L)
    logits = logits.masked_fill(attention_mask[:, None, :] == 0, float("-inf"))  # padding never attended
    return logits.softmax(-1) @ hidden  # (B, m, D)


def poly_scores(q_vecs: torch.Tensor, d_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """Scores (Q, N): each document's vector attends over each query's m vectors and scores the mix,

        s = sum_i softmax_i(scale * a_i) a_i,      a_i = y_i . e_d      (= e_d . sum_i w_i y_i)

    Args:
        q_vecs: query views (Q, m, D).
        d_emb: document embeddings (N, D).
        scale: sharpness of the attention over the views.

    Returns:
        (Q, N) tensor.

    Raises:
        ValueError: the shapes do not fit.

    >>> q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])             # one query, two views (Q=1, m=2, D=2)
    >>> poly_scores(q, torch.tensor([[1.0, 0.0], [0.6, 0.8]]), scale=20.0).round(decimals=3)   # picks the closer
    tensor([[1.0000, 0.7960]])
    """
    if q_vecs.ndim != 3 or d_emb.ndim != 2 or q_vecs.shape[-1] != d_emb.shape[-1]:
        raise ValueError(f"need q_vecs (Q, m, D) and d_emb (N, D), got {tuple(q_vecs.shape)} and {tuple(d_emb.shape)}.")
    a = torch.einsum("qmd,nd->qnm", q_vecs, d_emb)  # (Q, N, m)
    return ((scale * a).softmax(-1) * a).sum(-1)  # (Q, N)


class PolyEncoder(BiEncoder):
    """A ``BiEncoder`` (one tower, mean-pooled normalised documents) whose queries are m code views.

    ``codes`` = m, the number of learned codes (0: mean pooling, the plain bi-encoder); ``scale``: the
    sharpness of the document's attention over the m views. The codes start at N(0, ``init_std``), small
    enough that every view starts as the mean of the query's tokens.

    Args:
        name: base model, a folder or hub id (default: ``models.resolve_model()``).
        codes: m, learned codes; 0: mean pooling.
        scale: the document's attention sharpness over the views.
        max_length: tokens kept per text.
        init_std: standard deviation of the codes' initialisation.
        seed: seed of the codes' initialisation.
        device: where to run it (default: ``models.get_device()``).

    Raises:
        ValueError: ``codes`` below 0, or a ``max_length`` beyond the model's limit.
    """

    def __init__(self, name: str | None = None, codes: int = 16, scale: float = 20.0, max_length: int = 256,
                 init_std: float = 1e-3, seed: int = 0, device: torch.device | str | None = None):
        super().__init__(name, pooling="mean", shared=True, max_length=max_length, device=device)
        if codes < 0:
            raise ValueError(f"codes={codes}: give m >= 1 learned codes, or 0 for mean pooling.")
        generator = torch.Generator().manual_seed(seed)
        self.codes = torch.nn.Parameter(torch.randn(codes, self.dim, generator=generator).mul_(init_std))  # (m, D)
        self.scale = scale
        self.to(self.device)

    def forward(self, batch, tower: str = "query") -> torch.Tensor:
        """Query views (B, m, D), or (B, 1, D) with no codes; document embeddings (B, D). With grads.

        Args:
            batch: the output of ``tokenize``, (B, L) tensors.
            tower: ``"query"`` or ``"document"``.

        Returns:
            (B, m, D) or (B, 1, D) tensor for queries, (B, D) for documents.
        """
        if tower != "query":
            return super().forward(batch, tower)  # (B, D)
        out = self.query_tower(**batch)
        if len(self.codes) == 0:
            views = pool(out.last_hidden_state, batch["attention_mask"])[:, None]  # (B, 1, D)
        else:
            views = code_attention(out.last_hidden_state, batch["attention_mask"], self.codes)  # (B, m, D)
        return F.normalize(views, dim=-1)  # (B, m, D)

    def similarity(self, q_vecs: torch.Tensor, d_emb: torch.Tensor) -> torch.Tensor:
        """Scores (Q, N) of query views (Q, m, D) against document embeddings (N, D): ``poly_scores``.

        Args:
            q_vecs: query views (Q, m, D).
            d_emb: document embeddings (N, D).

        Returns:
            (Q, N) tensor, with grads.
        """
        return poly_scores(q_vecs, d_emb, self.scale)

    def score(self, q_vecs, d_emb, chunk: int = 8192) -> np.ndarray:
        """Scores (Q, N), float32 numpy, a chunk of documents at a time: memory Q x chunk x m.

        Args:
            q_vecs: query views (Q, m, D) from ``encode_queries``, numpy or torch.
            d_emb: document embeddings (N, D).
            chunk: documents scored at a time.

        Returns:
            (Q, N) float32 numpy array.
        """
        q_vecs = torch.as_tensor(q_vecs, dtype=torch.float32)  # (Q, m, D)
        d_emb = torch.as_tensor(d_emb, dtype=torch.float32)  # (N, D)
        with torch.inference_mode():
            return torch.cat([self.similarity(q_vecs, d_emb[i : i + chunk])
                              for i in range(0, len(d_emb), chunk)], dim=1).numpy()  # (Q, N)

    def searcher(self, ds: Dataset, cache_root: str | os.PathLike | None = None) -> "PolySearcher":
        return PolySearcher(self, ds, cache_root)


class PolySearcher:
    """A ``PolyEncoder`` and a corpus it embedded: query texts in, ids and scores out, like
    ``retrieval.DenseSearcher`` (so a pipeline takes it as a first stage). Every document is scored (no index
    can search m views at once); the documents are embedded once (``encode_corpus``, from the disk cache)."""

    def __init__(self, model: PolyEncoder, ds: Dataset, cache_root: str | os.PathLike | None = None):
        self.model, self.ids = model, list(ds.corpus)
        self.d_emb = encode_corpus(model, ds, cache_root=cache_root)  # (N, D)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: Sequence[str], k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query text: (ids, one list per query; scores (Q, k)), best first."""
        if isinstance(queries, str):
            raise TypeError("give a list of queries, not one string: e.g. search([query]).")
        q_vecs = self.model.encode_queries(list(queries), show_progress=False)  # (Q, m, D)
        return top_k(self.model.score(q_vecs, self.d_emb), self.ids, k)
