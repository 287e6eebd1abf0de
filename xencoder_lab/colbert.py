"""ColBERT: every token keeps a small vector, and a query token finds its best match in the document (notebook 08).

Khattab and Zaharia (2020). Queries and documents go through the same tower, each with a marker token after
[CLS] ([unused0] for a query, [unused1] for a document); a linear layer projects each token's output to
``dim`` (128) dimensions, and each vector is normalised:

    E_q = normalize(W h(q))          (Lq, dim)    the query, padded with [MASK] to Lq = ``query_length``
    E_d = normalize(W h(d))          (Ld, dim)    the document, every token, computed ahead of time
    s(q, d) = sum_i max_j E_q[i] . E_d[j]         MaxSim: late interaction

Query augmentation: the [MASK] tokens that pad every query to Lq are not attended to by the real tokens, but
their own outputs attend to the query and count in the sum: Lq - (real tokens) extra soft copies of what the
query is about, which re-weight its terms. ``augment=False`` pads with zero vectors instead (they add 0).

Padding. A batch of documents is padded to its longest; a padded position must never be a document's best
match. Here a padded row is the zero vector and MaxSim fills its similarities with -inf before the max.
Multiplying the similarities by the mask instead sets them to 0, which beats every negative similarity: a
query token whose matches in a document are all below 0 takes the padding's 0, so a document scores higher the
more padding its batch gave it (``maxsim(..., mask_with="multiply")`` shows it; notebook 08 measures it).

>>> model = ColBERT(max_length=32)
>>> Q = model.encode_queries(["Does aspirin prevent heart attacks?"])
>>> vectors, lengths = model.encode_documents(["Low-dose aspirin cut second heart attacks.", "Measles vaccine."])
>>> Q.shape, vectors.shape[1], lengths.tolist()        # 32 query vectors; [CLS] [D] ... [SEP] per document
((1, 32, 128), 128, [14, 8])
>>> maxsim(torch.from_numpy(Q), pad_documents(vectors, lengths)).argmax().item()
0
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import cross_encoder
from .batching import eval_mode, pad_batch
from .cache import load_or_compute
from .data import Dataset, document_text
from .models import load_encoder, lora_merged, model_fingerprint
from .retrieval import DenseRetriever, top_k

MARKERS = {"query": "[unused0]", "document": "[unused1]"}


def maxsim(Q: torch.Tensor, D: torch.Tensor, mask_with: str = "-inf") -> torch.Tensor:
    """Scores (B, N) of queries Q (B, Lq, dim) against documents D (N, Ld, dim) whose padded rows are zero:

        s(q, d) = sum_i max_j Q[i] . D[j]        the max over the document's real tokens only

    ``mask_with="-inf"`` (right) fills padded positions with -inf before the max; ``"multiply"`` multiplies
    the similarities by the mask (0 on padding): the bug the module docstring describes.

    Args:
        Q: query vectors (B, Lq, dim).
        D: document vectors (N, Ld, dim), padded rows zero.
        mask_with: ``"-inf"`` or ``"multiply"`` (the bug, to see it).

    Returns:
        (B, N) scores.

    Raises:
        ValueError: wrong shapes or an unknown ``mask_with``.

    >>> Q = torch.tensor([[[1.0, 0.0]]])                          # one query token
    >>> D = torch.tensor([[[-0.6, 0.8], [0.0, 0.0]],             # a document with 1 real token, 1 padded row
    ...                   [[-0.8, 0.6], [-0.6, 0.8]]])            # a document with 2 real tokens
    >>> maxsim(Q, D), maxsim(Q, D, mask_with="multiply")          # with the bug, the padded one wins: 0 > -0.6
    (tensor([[-0.6000, -0.6000]]), tensor([[ 0.0000, -0.6000]]))
    """
    if Q.ndim != 3 or D.ndim != 3 or Q.shape[-1] != D.shape[-1]:
        raise ValueError(f"need Q (B, Lq, dim) and D (N, Ld, dim), got {tuple(Q.shape)} and {tuple(D.shape)}.")
    sim = torch.einsum("bid,njd->bnij", Q, D)  # (B, N, Lq, Ld)
    real = D.abs().sum(-1) > 0  # (N, Ld): padded rows are zero vectors
    if mask_with == "-inf":
        sim = sim.masked_fill(~real[None, :, None, :], float("-inf"))
    elif mask_with == "multiply":
        sim = sim * real[None, :, None, :]
    else:
        raise ValueError(f"mask_with={mask_with!r}: use '-inf' (or 'multiply', to see the bug).")
    return sim.max(-1).values.sum(-1)  # (B, N)


def pad_documents(vectors: np.ndarray, lengths: Sequence[int], rows: Sequence[int] | None = None) -> torch.Tensor:
    """Documents ``rows`` (default all) of a flat token store (T, dim) as a zero-padded tensor (n, Lmax, dim).

    Args:
        vectors: every document's token vectors, one after another (T, dim).
        lengths: tokens per document (N,); they sum to T.
        rows: the documents to take, by position; None: all.

    Returns:
        (n, Lmax, dim) float32 tensor, Lmax the longest of them.

    >>> pad_documents(np.arange(6.0).reshape(3, 2), [1, 2], rows=[1, 0])   # document 0 is row 0; document 1, rows 1-2
    tensor([[[2., 3.],
             [4., 5.]],
    <BLANKLINE>
            [[0., 1.],
             [0., 0.]]])
    """
    lengths = np.asarray(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = np.arange(len(lengths)) if rows is None else np.asarray(rows, dtype=np.int64)
    position = np.arange(int(lengths[rows].max()))                       # (Lmax,)
    real = position[None, :] < lengths[rows][:, None]                    # (n, Lmax): False on padding
    take = np.where(real, starts[rows][:, None] + position[None, :], 0)  # (n, Lmax): each slot's row in vectors
    out = torch.as_tensor(vectors).index_select(0, torch.from_numpy(take.ravel()))  # (n * Lmax, dim), one gather
    out = out.view(*take.shape, -1).float()                              # (n, Lmax, dim)
    return out.masked_fill_(torch.from_numpy(~real)[..., None], 0.0)


class ColBERT(torch.nn.Module):
    """One tower and a projection to ``dim``; queries as ``query_length`` vectors, documents as one vector a
    token (cut at ``max_length`` tokens). The projection starts as a seeded random orthonormal map, which keeps
    the tower's token cosines roughly as they are (about 1/sqrt(dim) of noise).

    Args:
        name: base model, a folder or hub id (default: ``models.resolve_model()``).
        dim: width of the token vectors, at most the tower's hidden size.
        query_length: tokens per query, padded or cut to it.
        max_length: tokens kept per document.
        augment: pad queries with [MASK] tokens that take part in the score (query augmentation).
        seed: seed of the projection's initialisation.
        device: where to run it (default: ``models.get_device()``).

    Raises:
        ValueError: ``dim`` or a length out of range.
    """

    def __init__(self, name: str | None = None, dim: int = 128, query_length: int = 32, max_length: int = 256,
                 augment: bool = True, seed: int = 0, device: torch.device | str | None = None):
        super().__init__()
        self.tokenizer, self.tower = load_encoder(name, device)
        hidden, limit = self.tower.config.hidden_size, self.tower.config.max_position_embeddings
        if not 1 <= dim <= hidden or not 4 <= query_length <= limit or not 4 <= max_length <= limit:
            raise ValueError(f"dim={dim}, query_length={query_length}, max_length={max_length}: need 1 <= dim <= "
                             f"{hidden} and lengths between 4 and {limit} tokens.")
        generator = torch.Generator().manual_seed(seed)
        init = torch.linalg.qr(torch.randn(hidden, dim, generator=generator)).Q.T  # (dim, hidden), orthonormal rows
        self.projection = torch.nn.Linear(hidden, dim, bias=False)
        with torch.no_grad():
            self.projection.weight.copy_(init)
        self.dim, self.query_length, self.max_length, self.augment = dim, query_length, max_length, augment
        self.markers = {t: self.tokenizer.convert_tokens_to_ids(m) for t, m in MARKERS.items()}
        self.to(self.tower.device).eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def features(self, texts: Sequence[str], tower: str) -> dict[str, list[list[int]]]:
        """Unpadded token ids: [CLS] marker text... [SEP], cut to fit. A query is then padded to
        ``query_length`` with [MASK] (mask 0: no real token attends to it), or with [PAD] without ``augment``.

        Args:
            texts: a non-empty list of texts.
            tower: ``"query"`` or ``"document"``: which marker, and whether to pad.

        Returns:
            ``{"input_ids": n lists, "attention_mask": n lists}``; queries all ``query_length`` long.

        Raises:
            ValueError: an unknown tower, one string, or no texts.
        """
        if tower not in MARKERS:
            raise ValueError(f"tower={tower!r}: use 'query' or 'document'.")
        if isinstance(texts, str) or len(texts) == 0:
            raise ValueError("give a non-empty list of texts.")
        length = self.query_length if tower == "query" else self.max_length
        ids = self.tokenizer(list(texts), truncation=True, max_length=length - 1)["input_ids"]
        ids = [row[:1] + [self.markers[tower]] + row[1:] for row in ids]  # (n, <= length)
        mask = [[1] * len(row) for row in ids]
        if tower == "query":
            fill = self.tokenizer.mask_token_id if self.augment else self.tokenizer.pad_token_id
            ids = [row + [fill] * (length - len(row)) for row in ids]
            mask = [row + [0] * (length - len(row)) for row in mask]
        return {"input_ids": ids, "attention_mask": mask}

    def tokenize(self, texts: Sequence[str], tower: str = "query") -> dict[str, torch.Tensor]:
        """Tensors (B, L) of ``features``, padded to the batch's longest, on the model's device.

        Args:
            texts: B texts.
            tower: ``"query"`` or ``"document"``.

        Returns:
            ``{"input_ids": (B, L), "attention_mask": (B, L)}`` tensors.
        """
        features = self.features(texts, tower)
        batch = pad_batch(features, range(len(texts)), self.tokenizer.pad_token_id)
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, batch, tower: str = "query") -> torch.Tensor:
        """Token vectors (B, L, dim), normalised; the rows MaxSim must skip are zero: a document's padding, and
        a query's padding without ``augment`` (a zero query row adds 0 to the score).

        Args:
            batch: the output of ``tokenize``, (B, L) tensors.
            tower: ``"query"`` or ``"document"``.

        Returns:
            (B, L, dim) tensor, with grads.
        """
        out = self.tower(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        vectors = F.normalize(self.projection(out.last_hidden_state), dim=-1)  # (B, L, dim)
        keep = batch["attention_mask"].clone()  # (B, L)
        if tower == "query" and self.augment:
            keep = torch.ones_like(keep)  # every [MASK] counts
        return vectors * keep[..., None]  # (B, L, dim)

    def similarity(self, Q: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        """Training scores (B, N): ``maxsim``.

        Args:
            Q: query vectors (B, Lq, dim).
            D: document vectors (N, Ld, dim), padded rows zero.

        Returns:
            (B, N) tensor.
        """
        return maxsim(Q, D)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32, show_progress: bool | None = None):
        """Query vectors, float32 numpy (Q, query_length, dim).

        Args:
            texts: Q query texts.
            batch_size: queries per forward pass.
            show_progress: accepted for ``BiEncoder``'s interface; no bar is shown.

        Returns:
            (Q, query_length, dim) float32 numpy array.

        Raises:
            ValueError: an empty query.
        """
        empty = [i for i, text in enumerate(texts) if isinstance(text, str) and not text.strip()]
        if empty:
            raise ValueError(f"query {empty[0]} is empty: give each query at least one word.")
        chunks = []
        with eval_mode(self), torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                chunks.append(self(self.tokenize(texts[start : start + batch_size], "query"), "query").cpu().numpy())
        return np.concatenate(chunks)

    def encode_documents(self, texts: Sequence[str], batch_size: int = 32, show_progress: bool | None = None):
        """Every document's token vectors, flat: (vectors (T, dim) float16, lengths (N,)); document i is rows
        sum(lengths[:i]) to sum(lengths[:i+1]). Batches of similar length, as ``batching.run_sorted``; any
        LoRA updates folded into the base weights for the run (``models.lora_merged``).

        Args:
            texts: N document texts.
            batch_size: documents per forward pass.
            show_progress: show a progress bar; ``None``: from 256 documents.

        Returns:
            ``(vectors, lengths)``: (T, dim) float16 numpy array and (N,) int array.
        """
        from tqdm import tqdm

        features = self.features(texts, "document")
        lengths = np.array([len(row) for row in features["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        rows: list[np.ndarray | None] = [None] * len(texts)
        show = len(texts) >= 256 if show_progress is None else show_progress
        with eval_mode(self), lora_merged(self), torch.inference_mode():   # LoRA folded in: about 20% faster
            for start in tqdm(range(0, len(texts), batch_size), desc="encoding", unit="batch", disable=not show,
                              mininterval=2.0):
                chosen = order[start : start + batch_size].tolist()
                batch = pad_batch(features, chosen, self.tokenizer.pad_token_id)
                batch = {k: v.to(self.device) for k, v in batch.items()}
                D = self(batch, "document").half().cpu().numpy()  # (b, L, dim)
                for i, row in enumerate(chosen):
                    rows[row] = D[i, : lengths[row]]
        return np.concatenate(rows), lengths

    def searcher(self, ds: Dataset, cache_root: str | os.PathLike | None = None) -> "ColbertIndex":
        return ColbertIndex(self, ds, cache_root=cache_root)


TOKEN_CACHE = "colbert_tokens"


def same_shape(model: ColBERT, ds: Dataset, seed: int = 0) -> "ColbertIndex":
    """An exact index of ``ds``'s corpus with each document's real token count and random unit vectors in place
    of its token vectors: what exact MaxSim costs on this corpus (a product and a max over the same shapes),
    without encoding it. Its rankings mean nothing; time a search with it, rank with the model's own index.

    >>> from xencoder_lab.data import Dataset
    >>> ds = Dataset("mini", "test", {"a": {"text": "aspirin and heart attacks"}, "b": {"text": "measles"}}, {}, {})
    >>> model = ColBERT(max_length=32)
    >>> fake, real = same_shape(model, ds), model.encode_documents(["aspirin and heart attacks", "measles"])
    >>> fake.lengths.tolist() == real[1].tolist(), fake.vectors.shape == real[0].shape, fake.vectors.dtype
    (True, True, dtype('float16'))
    """
    lengths = np.array([len(row) for row in model.features([document_text(d) for d in ds.corpus.values()],
                                                           "document")["input_ids"]])
    vectors = np.random.default_rng(seed).standard_normal((int(lengths.sum()), model.dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return ColbertIndex(model, ds, vectors=(vectors.astype(np.float16), lengths))


class ColbertIndex:
    """A corpus as ColBERT embeds it, one vector a token (fp16, from the disk cache after the first time), and
    the ways to use it:

    - ``rerank`` / ``rerank_run``: exact MaxSim of a query against given documents (a first stage's top depth);
    - ``search`` with ``index=None``: exact MaxSim against every document (one (Lq, T) product over all T token
      vectors, then a max within each document): the reference, fine for tens of thousands of documents;
    - ``search`` with a FAISS ``index_factory`` key (e.g. ``"IVF1024,SQfp16"``): end to end at scale. Each query
      vector finds its ``candidates`` nearest token vectors in the index; only the documents they belong to are
      scored exactly (MaxSim). ``set_search(nprobe=...)`` turns the index's knob.

    ``search`` has the interface of ``retrieval.DenseSearcher``, so a pipeline takes it as a first stage.

    Args:
        model: the ColBERT that embeds the corpus and the queries.
        ds: the dataset whose corpus to index.
        index: a FAISS ``index_factory`` key for the token vectors; None: exact MaxSim over every document.
        candidates: nearest token vectors each query vector fetches from the index.
        train_size: token vectors the index trains on (a sample); None: all.
        cache_root: the disk cache's folder (default: ``XLAB_CACHE``).
        vectors: ``(vectors (T, dim) float16, lengths (N,))`` to index instead of the model's encoding of the
            corpus (``same_shape``'s, to time a search); None: the model's, from the cache.
    """

    def __init__(self, model: ColBERT, ds: Dataset, index: str | None = None, candidates: int = 32,
                 train_size: int | None = 100_000, cache_root: str | os.PathLike | None = None,
                 vectors: tuple[np.ndarray, np.ndarray] | None = None):
        self.model, self.ids = model, list(ds.corpus)
        texts = [document_text(ds.corpus[d]) for d in self.ids]
        parts = {"model": model_fingerprint(model), "dataset": ds.name, "max_length": model.max_length,
                 "docs": hashlib.sha256(json.dumps([self.ids, texts]).encode()).hexdigest()[:16]}
        made = {}

        def encode():
            if not made:
                made["v"] = model.encode_documents(texts)
            return made["v"]

        if vectors is not None:
            if len(vectors[1]) != len(self.ids) or int(np.sum(vectors[1])) != len(vectors[0]):
                raise ValueError(f"vectors: need {len(self.ids)} lengths summing to the rows of the vectors.")
            self.vectors, self.lengths = vectors
        else:
            self.vectors = load_or_compute(TOKEN_CACHE, {**parts, "array": "vectors"}, lambda: encode()[0], cache_root)
            self.lengths = load_or_compute(TOKEN_CACHE, {**parts, "array": "lengths"}, lambda: encode()[1], cache_root)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])  # document i: rows offsets[i]:offsets[i + 1]
        self.kind, self.candidates, self.tokens = index, candidates, None
        if index is not None:
            owner = np.repeat(np.arange(len(self.ids)), self.lengths).astype(str).tolist()  # each token's document
            self.tokens = DenseRetriever(self.vectors.astype(np.float32), owner, index=index, train_size=train_size)

    def __len__(self) -> int:
        return len(self.ids)

    def set_search(self, **params: int) -> "ColbertIndex":
        """Set the token index's search knob (``nprobe``, ``efSearch``); returns the index.

        Args:
            **params: FAISS search parameters, e.g. ``nprobe=16``.

        Returns:
            this ``ColbertIndex``.

        Raises:
            ValueError: exact search (``index=None``) has no knob.
        """
        if self.tokens is None:
            raise ValueError("exact search (index=None) has no knob: build with index='IVF1024,SQfp16', say.")
        self.tokens.set_search(**params)
        return self

    def bytes_per_document(self) -> dict[str, float]:
        """Memory a document takes: its tokens, their fp16 vectors (what exact MaxSim reads), the token index.

        Returns:
            ``{"tokens": mean tokens, "fp16 vectors": bytes, "token index": bytes (with an index only)}``.
        """
        tokens = float(self.lengths.mean())
        sizes = {"tokens": tokens, "fp16 vectors": tokens * self.model.dim * 2}
        if self.tokens is not None:
            sizes["token index"] = tokens * self.tokens.bytes_per_vector()
        return sizes

    def rerank(self, Q: np.ndarray, rows: Sequence[int], mask_with: str = "-inf") -> np.ndarray:
        """Exact MaxSim scores (len(rows),) of one query's vectors Q (Lq, dim) against documents ``rows``, padded
        together to the longest of them (``mask_with``: see ``maxsim``).

        Args:
            Q: one query's vectors (Lq, dim).
            rows: the documents' positions in the corpus.
            mask_with: ``"-inf"`` or ``"multiply"`` (see ``maxsim``).

        Returns:
            (len(rows),) float32 scores.
        """
        D = pad_documents(self.vectors, self.lengths, rows)  # (n, Lmax, dim)
        with torch.inference_mode():
            return maxsim(torch.as_tensor(Q, dtype=torch.float32)[None], D, mask_with)[0].numpy()  # (n,)

    def rerank_run(self, queries: Mapping[str, str], run: Mapping[str, Sequence[str]], depth: int = 100,
                   mask_with: str = "-inf", query_vectors: np.ndarray | None = None) -> dict[str, list[str]]:
        """A first stage's ``run`` ({query id: ranked ids}) with each query's top ``depth`` reordered by exact
        MaxSim (``cross_encoder.rerank``: ties keep the first stage's order); the rest keep their order.
        ``queries``: {query id: text}; ``query_vectors`` (n, Lq, dim), in ``run``'s order, saves encoding them
        again when the same queries are reranked several times.

        Args:
            queries: ``{query id: text}``.
            run: ``{query id: [doc ids, best first]}`` of the first stage.
            depth: documents reranked per query.
            mask_with: ``"-inf"`` or ``"multiply"`` (see ``maxsim``).
            query_vectors: (n, Lq, dim) from ``encode_queries``, in ``run``'s order; None: encode them.

        Returns:
            ``{query id: [doc ids]}``, the top ``depth`` by MaxSim, then the rest.
        """
        row = {doc_id: i for i, doc_id in enumerate(self.ids)}
        run = {q: list(ranking) for q, ranking in run.items()}
        Q = self.model.encode_queries([queries[q] for q in run]) if query_vectors is None else query_vectors
        scores = {}  # {query id: {doc id: MaxSim}} over each top depth
        for (qid, ranking), q in zip(run.items(), Q):
            top = ranking[:depth]
            scores[qid] = dict(zip(top, self.rerank(q, [row[d] for d in top], mask_with).tolist()))
        return cross_encoder.rerank(run, scores, depth)

    def exhaustive(self, Q: np.ndarray, budget: int = 2**24) -> np.ndarray:
        """Exact MaxSim scores of one query's vectors Q (Lq, dim), or of B queries' (B, Lq, dim), against every
        document: (N,) or (B, N). All B * Lq query vectors @ a chunk of whole documents' token vectors.T (about
        ``budget`` similarities at a time), the max within each document, the sum over each query's vectors. Each
        chunk is converted from fp16 once for all B queries, which is most of the cost of one query alone."""
        one = np.ndim(Q) == 2
        Q = torch.as_tensor(Q[None] if one else Q, dtype=torch.float32)  # (B, Lq, dim)
        rows = Q.reshape(-1, Q.shape[-1])  # (B * Lq, dim)
        chunk = max(budget // len(rows), 1)  # token vectors a chunk
        scores = np.empty((len(Q), len(self.ids)), dtype=np.float32)  # (B, N)
        start = 0
        with torch.inference_mode():
            while start < len(self.ids):
                end = int(np.searchsorted(self.offsets, self.offsets[start] + chunk, side="right")) - 1
                end = max(end, start + 1)  # at least one document
                tokens = torch.from_numpy(self.vectors[self.offsets[start]: self.offsets[end]]).float()  # (T, dim)
                sims = (rows @ tokens.T).numpy()  # (B * Lq, T)
                best = np.maximum.reduceat(sims, self.offsets[start:end] - self.offsets[start], axis=1)  # (B*Lq, n)
                scores[:, start:end] = best.reshape(len(Q), -1, end - start).sum(1)
                start = end
        return scores[0] if one else scores

    def search(self, queries: Sequence[str], k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query text: (ids, one list per query; scores (Q, k)), best first. With a
        token index, a query whose candidates hold fewer than ``k`` documents gets a shorter list (scores -inf
        after it).

        Args:
            queries: Q query texts, a list (not one string).
            k: documents per query, 1 to N.

        Returns:
            ``(ids, scores)``: Q lists of at most k document ids, best first, and scores (Q, k) float32.

        Raises:
            TypeError: one string instead of a list.
            ValueError: ``k`` outside 1..N.
        """
        if isinstance(queries, str):
            raise TypeError("give a list of queries, not one string: e.g. search([query]).")
        if not 1 <= k <= len(self.ids):
            raise ValueError(f"k={k} but the corpus has {len(self.ids)} documents: use 1 <= k <= {len(self.ids)}.")
        Q = self.model.encode_queries(list(queries))  # (Q, Lq, dim)
        ids, scores = [], np.full((len(Q), k), -np.inf, dtype=np.float32)
        if self.tokens is None:  # 64 queries at a time share each chunk of the corpus
            exact = np.concatenate([self.exhaustive(Q[i: i + 64]) for i in range(0, len(Q), 64)])  # (Q, N)
        for i, q in enumerate(Q):
            if self.tokens is None:
                rows, s = np.arange(len(self.ids)), exact[i]
            else:
                found, _ = self.tokens.search(q[np.abs(q).sum(-1) > 0], k=self.candidates)  # (Lq', candidates)
                rows = np.unique(np.array([int(r) for row in found for r in row]))  # candidate documents
                s = self.rerank(q, rows)
            best, top = top_k(s[None], [self.ids[r] for r in rows], min(k, len(rows)))
            ids.append(best[0])
            scores[i, : len(best[0])] = top[0]
        return ids, scores
