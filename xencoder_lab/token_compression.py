"""A ColBERT index's token vectors stored smaller, and what comes back from them (notebook 08).

A ColBERT index keeps one vector a token: 128 fp16 numbers, 256 bytes. ``compress_tokens`` trains an encoder on
a seeded sample of them, encodes every vector and decodes it again, so that MaxSim can score with what a smaller
index would give back. What each key stores, per token of D dimensions:

    "PQ<M>"            product quantisation: the vector cut into M slices of D / M numbers, each slice
                       replaced by the id of its nearest of 256 centroids (k-means on that slice): M bytes
    "IVF<K>,PQ<M>"     residual PQ: the nearest of K coarse centroids, then PQ of what is left after
                       subtracting it (the residual, smaller, so quantised more finely): M bytes for the PQ
                       code plus the list id, ceil(log2 K / 8) bytes (2 for K = 1,024)
    "PCA<d>"           the d principal directions of the sample (d < D): d numbers in fp16, 2 d bytes;
                       decoding maps back to D dimensions and renormalises to unit length

>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((300, 16)).astype(np.float32)
>>> x /= np.linalg.norm(x, axis=1, keepdims=True)                   # 300 unit token vectors, D = 16
>>> back, width = compress_tokens(x, "PQ8", seed=0)
>>> back.shape, width                                                 # 8 slices of 2 numbers, a byte each
((300, 16), 8)
>>> back, width = compress_tokens(x, "PCA4", seed=0)
>>> back.shape, width, bool(np.allclose(np.linalg.norm(back, axis=1), 1, atol=1e-5))   # 4 fp16 numbers
((300, 16), 8, True)
"""

from __future__ import annotations

import re

import faiss
import numpy as np
import torch
import torch.nn.functional as F


def compress_tokens(vectors: np.ndarray, key: str, sample: int = 100_000,
                    seed: int = 0) -> tuple[np.ndarray, int]:
    """Train an encoder on a seeded sample of token vectors, then encode and decode all of them.

    Args:
        vectors: token vectors (T, D), unit length (any float dtype; fp16 as a ColBERT index keeps them).
        key: ``"PCA<d>"`` (d < D, stored in fp16) or a FAISS ``index_factory`` key with a standalone codec,
            such as ``"PQ32"``, ``"PQ16"`` or ``"IVF1024,PQ16"`` (inner-product metric).
        sample: at most this many vectors, drawn without replacement, train the encoder.
        seed: seed of that draw; the same seed gives the same output.

    Returns:
        (decoded vectors (T, D) float32, bytes stored per token).

    Raises:
        ValueError: a key FAISS cannot parse or train (too few vectors for its centroids, a PQ that does not
            divide D), a PCA size not below D, or vectors that are not a non-empty (T, D) array.
    """
    x = np.asarray(vectors).astype(np.float32)                              # (T, D)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"vectors must be a non-empty (T, D) array, got shape {x.shape}.")
    n, dim = x.shape
    rows = np.random.default_rng(seed).choice(n, min(sample, n), replace=False)
    train = x[rows]                                                         # (min(sample, T), D)
    if key.startswith("PCA"):
        size = key[3:]
        if not size.isdigit() or not 0 < int(size) < dim:
            raise ValueError(f"key {key!r}: a PCA size must be a whole number from 1 to {dim - 1} (D = {dim}).")
        if len(train) < int(size):
            raise ValueError(f"key {key!r}: {len(train)} vectors are too few to train {size} directions.")
        pca = faiss.PCAMatrix(dim, int(size))
        pca.train(train)
        low = pca.apply(x)                                                  # (T, d): what is stored, in fp16
        back = pca.reverse_transform(low.astype(np.float16).astype(np.float32))   # (T, D), for the query's vectors
        return F.normalize(torch.from_numpy(back), dim=-1).numpy(), low.shape[1] * 2
    try:
        index = faiss.index_factory(dim, key, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise ValueError(f"key {key!r}: FAISS cannot build it for D = {dim} ({_reason(error)}).") from None
    if hasattr(index, "do_polysemous_training"):
        # The factory's default reorders PQ codes for Hamming-distance search (polysemous codes); this only
        # encodes and decodes, so that reordering is unused work.
        index.do_polysemous_training = False
    try:
        index.train(train)
        codes = index.sa_encode(x)                                          # (T, bytes per token) uint8
    except RuntimeError as error:
        raise ValueError(f"key {key!r}: FAISS cannot train or encode with {len(train)} vectors of D = {dim} "
                         f"({_reason(error)}).") from None
    return index.sa_decode(codes), codes.shape[1]                           # (T, D) float32


def _reason(error: RuntimeError) -> str:
    """FAISS's own words from its error, without the C++ function and file it names."""
    return re.split(r"\.(?:cpp|h):\d+: ", str(error).strip())[-1][:200]
