"""Checks for notebook 08's exercises: MaxSim from raw token vectors and their masks, against ``colbert.maxsim``
(after the normalisation and masking of ``ColBERT.forward``), and a query's input ids with augmentation, against
``ColBERT.features``."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from xencoder_lab import colbert
from xencoder_lab.exercises import Case, check

CLS, SEP, MARKER, MASK = 101, 102, 1, 103  # BERT's ids for [CLS], [SEP], [unused0], [MASK]


def _maxsim(Q, query_mask, D, doc_mask):
    """The package's MaxSim on the vectors as ``ColBERT.forward`` leaves them: normalised, masked rows zero."""
    Q = F.normalize(Q, dim=-1) * query_mask[..., None]  # (B, Lq, dim)
    D = F.normalize(D, dim=-1) * doc_mask[..., None]  # (N, Ld, dim)
    return colbert.maxsim(Q, D)  # (B, N)


def check_maxsim_scores(maxsim_scores) -> bool | None:
    """Exercise 1: ``maxsim_scores(Q, query_mask, D, doc_mask)``, MaxSim scores (B, N) of raw token vectors."""
    unit_q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [-0.8, 0.6]]])  # (B=2, Lq=2, 2)
    unit_d = torch.tensor([[[0.6, 0.8], [0.8, -0.6], [-1.0, 0.0]],  # (N=3, Ld=3, 2)
                           [[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]],
                           [[-0.6, 0.8], [0.0, -1.0], [0.8, 0.6]]])
    raw_q = torch.tensor([[[2.0, 0.0], [0.0, 0.5]]])  # (1, 2, 2): lengths 2 and 0.5
    raw_d = torch.tensor([[[3.0, 4.0], [0.4, -0.3]], [[0.0, 2.0], [10.0, 0.0]]])  # (2, 2, 2)
    one_q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2)
    padded_d = torch.tensor([[[0.6, 0.8], [0.8, 0.6], [1.0, 0.0]],  # 2 real tokens, then the encoder's output
                             [[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]]])  # at a padded position: not zero
    negative_d = torch.tensor([[[-0.6, -0.8], [-0.8, -0.6], [0.6, 0.8]],  # every real similarity below 0
                               [[-1.0, 0.0], [0.0, -1.0], [-0.6, -0.8]]])
    doc_mask = torch.tensor([[True, True, False], [True, True, True]])  # (N, Ld)
    pad_q = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]])  # the third vector is a [PAD]'s output
    pad_q_mask = torch.tensor([[True, True, False]])

    def full(x):
        return torch.ones(x.shape[:2], dtype=torch.bool)

    cases = [
        Case("two queries against three documents without padding", (unit_q, full(unit_q), unit_d, full(unit_d)),
             hint="for each query vector take its best dot product over the document's tokens (the max over the "
                  "last axis of the (B, N, Lq, Ld) similarities), then sum over the query's vectors"),
        Case("vectors not of length 1", (raw_q, full(raw_q), raw_d, full(raw_d)),
             hint="normalise every token vector to length 1 first (F.normalize(x, dim=-1)): MaxSim sums cosines"),
        Case("a padded document position whose vector is not zero", (one_q, full(one_q), padded_d, doc_mask),
             hint="a padded document position (doc_mask False) must never be a best match: the encoder's output "
                  "there is not zero, so mask it out of the max"),
        Case("every real similarity below 0", (one_q, full(one_q), negative_d, doc_mask),
             hint="multiplying by the mask turns a padded position's similarity into 0, which beats every negative "
                  "one: fill it with -inf before the max (masked_fill)"),
        Case("a padded query vector", (pad_q, pad_q_mask, padded_d, doc_mask),
             hint="a query vector whose query_mask is False adds nothing: leave it out of the sum"),
    ]
    return check("Exercise 1 (MaxSim)", maxsim_scores, _maxsim, cases)


class _CutOnly:
    """Stands in for BERT's tokenizer with the claim already tokenized: it only cuts as that tokenizer does
    (``truncation=True``: [CLS], the first ``max_length - 2`` tokens, [SEP])."""

    pad_token_id = 0

    def __init__(self, ids: list[int], mask_id: int):
        self.ids, self.mask_token_id = ids, mask_id

    def __call__(self, texts, truncation: bool, max_length: int) -> dict:
        cut = self.ids if len(self.ids) <= max_length else self.ids[: max_length - 1] + self.ids[-1:]
        return {"input_ids": [cut]}


def _features(ids, marker, mask_id, length=32):
    """``ColBERT.features`` for one query, on a stand-in model whose tokenizer returns ``ids``."""
    model = SimpleNamespace(tokenizer=_CutOnly(ids, mask_id), query_length=length, max_length=length, augment=True,
                            markers={"query": marker})
    features = colbert.ColBERT.features(model, ["the claim"], "query")
    return features["input_ids"][0], features["attention_mask"][0]


def check_query_features(query_features) -> bool | None:
    """Exercise 2: ``query_features(ids, marker, mask_id, length=32)``, a query's (input_ids, attention_mask)."""
    claim = [CLS, 2000, 2001, 2002, SEP]
    long_claim = [CLS, *range(2000, 2010), SEP]  # 12 tokens: with the marker, more than 8
    cases = [
        Case("a short claim at length 8", (claim, MARKER, MASK, 8),
             hint="the query is [CLS], the marker, the claim's other tokens, then mask_id until it is exactly "
                  "length tokens long; the attention mask is 1 on the real tokens and the marker, 0 on every "
                  "[MASK]"),
        Case("a claim longer than the query (12 tokens, length 8)", (long_claim, MARKER, MASK, 8),
             hint="a claim too long is cut to length tokens, the marker counted, keeping [CLS] first and [SEP] last "
                  "(as the tokenizer's truncation does)"),
    ]
    return check("Exercise 2 (query augmentation)", query_features, _features, cases)
