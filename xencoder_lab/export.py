"""Carry a course model into sentence-transformers: a folder that its ``SentenceTransformer`` or ``CrossEncoder``
loads, with the same weights, tokenizer, ``max_length`` and scores (notebook 05, using the models).

    BiEncoder     ->  Transformer (query tower, tokenizer)  ->  Pooling (mean | cls)  ->  Normalize (if normalised)
    CrossEncoder  ->  Transformer (encoder, tokenizer)      ->  HeadAndCosine

    scores = w . h_[CLS] + b + scale * cos(mean_q(h), mean_d(h))        HeadAndCosine (no cosine for a plain head)

``SentenceTransformer(folder).encode(texts)`` then gives ``model.encode_documents(texts)``, and
``CrossEncoder(folder, trust_remote_code=True).predict(pairs)`` gives ``model.score(...)``: logits, not
sigmoids (the folder stores the identity as the activation). No stock sentence-transformers module computes
our cross-encoder's score, so ``HeadAndCosine`` lives here; loading the folder imports it from this package,
which sentence-transformers does only with ``trust_remote_code=True``, and only where ``xencoder_lab`` is
installed. A bi-encoder folder needs neither.

>>> module = HeadAndCosine(dim=2)                       # a fresh module scores 0; export copies a model's weights
>>> _ = torch.nn.init.constant_(module.scale, 10.0)
>>> features = {
...     "token_embeddings": torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]]]),  # (B=1, L=3, D=2)
...     "attention_mask": torch.tensor([[1, 1, 1]]),
...     "token_type_ids": torch.tensor([[0, 0, 1]]),    # two query tokens, one document token
... }
>>> round(module(features)["scores"].item(), 4)          # 10 * cos((1, 0), (1, 1))
7.0711
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers import CrossEncoder as STCrossEncoder
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Module, Normalize, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling

from .bi_encoder import BiEncoder
from .cache import atomic_folder
from .cross_encoder import CrossEncoder

POOLINGS = ("mean", "cls")  # sentence-transformers' Pooling has both under these names; 'pooler' it has not


class HeadAndCosine(Module):
    """sentence-transformers module: ``scores`` (B, 1) = w . h_[CLS] + b + scale * cos(mean_q(h), mean_d(h)).

    Plain torch on the ``Transformer`` module's outputs: ``mean_q`` and ``mean_d`` average the token vectors
    of the query (token type 0) and of the document (token type 1) of the joint pass. It calls none of our
    model code, so an exported model that gives our scores also checks the formula a second time.
    ``cosine=False`` is a plain head (no ``scale``). Saved as ``config.json`` (``dim``, ``cosine``) and
    ``model.safetensors``.
    """

    config_keys = ["dim", "cosine"]

    def __init__(self, dim: int, cosine: bool = True):
        super().__init__()
        self.dim, self.cosine = dim, cosine
        self.head = torch.nn.Linear(dim, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.scale = torch.nn.Parameter(torch.tensor(0.0)) if cosine else None

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        h, mask = features["token_embeddings"], features["attention_mask"]  # (B, L, D), (B, L)
        scores = self.head(h[:, 0])  # (B, 1)
        if self.cosine:
            segment = features["token_type_ids"]  # (B, L)

            def mean(m):  # average of the token vectors where m is 1
                m = m.unsqueeze(-1).to(h.dtype)  # (B, L, 1)
                return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, D)

            cosine = F.cosine_similarity(mean(mask * (segment == 0)), mean(mask * (segment == 1)), dim=-1)  # (B,)
            scores = scores + self.scale * cosine.unsqueeze(-1)  # (B, 1)
        features["scores"] = scores
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs,
    ) -> HeadAndCosine:
        hub = {"subfolder": subfolder, "token": token, "cache_folder": cache_folder, "revision": revision,
               "local_files_only": local_files_only}
        module = cls(**cls.load_config(model_name_or_path, **hub))
        return cls.load_torch_weights(model_name_or_path, model=module, **hub)


def to_sentence_transformers(
    model: BiEncoder | CrossEncoder, folder: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write ``model`` to ``folder`` as a sentence-transformers model; return the folder.

    A ``BiEncoder`` becomes a ``SentenceTransformer`` (shared tower; mean or cls pooling), a ``CrossEncoder``
    a sentence-transformers ``CrossEncoder`` whose ``predict`` gives our logits (load it with
    ``trust_remote_code=True``). Both read at most ``model.max_length`` tokens; a pair is cut longest part
    first, as ours. The folder is written in full under a temporary name, then renamed: an existing folder is
    kept unless ``overwrite=True``, and then replaced only once the new one is complete.

    Args:
        model: a ``BiEncoder`` with one shared tower, or a ``CrossEncoder``.
        folder: where to write it.
        overwrite: replace an existing sentence-transformers model there.

    Returns:
        the folder, as a ``Path``.

    Raises:
        TypeError: another kind of model.
        ValueError: a two-tower bi-encoder, a pooling sentence-transformers lacks, or a folder that holds
            something else.
        FileExistsError: the folder exists and ``overwrite`` is False.
    """
    folder = Path(folder)
    if isinstance(model, BiEncoder):
        if not model.shared:
            raise ValueError("only a BiEncoder with one shared tower can be exported: this one has two (shared=False).")
        if model.pooling not in POOLINGS:
            raise ValueError(
                f"pooling={model.pooling!r} has no sentence-transformers counterpart: export a model with "
                f"pooling in {POOLINGS}."
            )
        encoder = model.query_tower
    elif isinstance(model, CrossEncoder):
        encoder = model.encoder
    else:
        raise TypeError(f"cannot export a {type(model).__name__}: give a BiEncoder or a CrossEncoder.")
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already exists: pass overwrite=True to replace it.")
    if folder.is_file() or (folder.exists() and any(folder.iterdir()) and not (folder / "modules.json").exists()):
        raise ValueError(f"{folder} holds no sentence-transformers model: not replacing it, even with overwrite=True.")

    with atomic_folder(folder) as tmp, tempfile.TemporaryDirectory() as staging:
        encoder.save_pretrained(staging)  # the weights as they are now, for the Transformer to load
        model.tokenizer.save_pretrained(staging)
        _sentence_transformers_model(model, staging).save(str(tmp), create_model_card=False)
    return folder


def _sentence_transformers_model(model: BiEncoder | CrossEncoder, staging: str):
    """The sentence-transformers model, on the CPU, built from the encoder and tokenizer saved in ``staging``."""
    limit = {"model_max_length": model.max_length}  # the tokenizer cuts there
    if isinstance(model, BiEncoder):
        transformer = Transformer(staging, processor_kwargs=limit)
        modules = [transformer, Pooling(transformer.get_embedding_dimension(), model.pooling)]
        if model.normalize:
            modules.append(Normalize())
        return SentenceTransformer(modules=modules, device="cpu")
    # one score per pair, so that predict squeezes (B, 1) to (B,); truncation: its default, longest first
    transformer = Transformer(staging, processor_kwargs=limit, config_kwargs={"num_labels": 1})
    head = HeadAndCosine(transformer.get_embedding_dimension(), cosine=model.scale is not None)
    head.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")})
    return STCrossEncoder(modules=[transformer, head], device="cpu", activation_fn=torch.nn.Identity())
