"""Tests for xencoder_lab.losses: InfoNCE against sentence-transformers' MultipleNegativesRankingLoss."""

import warnings

import pytest
import torch
import torch.nn.functional as F

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer import losses as st_losses
except ImportError:
    from sentence_transformers import losses as st_losses

from xencoder_lab.losses import in_batch_negatives_loss


def embeddings(*shape, seed=0):
    """Random L2-normalised rows: the reference scores with cosine similarity, ours with the dot product."""
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


@pytest.mark.parametrize("temperature", [0.05, 0.07, 1.0])
def test_matches_multiple_negatives_ranking_loss(temperature):
    q_emb, d_emb = embeddings(8, 16, seed=1), embeddings(8, 16, seed=2)
    # The reference keeps `model` only to embed texts; compute_loss_from_embeddings never touches it.
    reference = st_losses.MultipleNegativesRankingLoss(model=None, scale=1 / temperature)
    expected = reference.compute_loss_from_embeddings([q_emb, d_emb], labels=None)
    torch.testing.assert_close(in_batch_negatives_loss(q_emb, d_emb, temperature), expected)


def test_hard_negatives_match_reference():
    q_emb, d_emb, hard = embeddings(6, 16, seed=3), embeddings(6, 16, seed=4), embeddings(6, 16, seed=5)
    reference = st_losses.MultipleNegativesRankingLoss(model=None, scale=20.0)
    expected = reference.compute_loss_from_embeddings([q_emb, d_emb, hard], labels=None)
    ours = in_batch_negatives_loss(q_emb, torch.cat([d_emb, hard]), temperature=0.05)
    torch.testing.assert_close(ours, expected)
    assert ours > in_batch_negatives_loss(q_emb, d_emb, temperature=0.05)  # more negatives, higher loss


def test_symmetric_matches_reference():
    q_emb, d_emb = embeddings(8, 16, seed=6), embeddings(8, 16, seed=7)
    reference = st_losses.MultipleNegativesRankingLoss(
        model=None, scale=20.0, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
    )
    expected = reference.compute_loss_from_embeddings([q_emb, d_emb], labels=None)
    ours = in_batch_negatives_loss(q_emb, d_emb, temperature=0.05, symmetric=True)
    torch.testing.assert_close(ours, expected)
    if hasattr(st_losses, "MultipleNegativesSymmetricRankingLoss"):  # deprecated in v6, same computation
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = st_losses.MultipleNegativesSymmetricRankingLoss(model=None, scale=20.0)
        torch.testing.assert_close(ours, old.compute_loss_from_embeddings([q_emb, d_emb], labels=None))


def test_matches_hand_computed_formula():
    q_emb, d_emb, tau = embeddings(4, 8, seed=8), embeddings(5, 8, seed=9), 0.07
    s = q_emb @ d_emb.T / tau
    expected = -torch.stack([s[i, i] - torch.logsumexp(s[i], dim=0) for i in range(4)]).mean()
    torch.testing.assert_close(in_batch_negatives_loss(q_emb, d_emb, tau), expected)


def test_gradient_and_shapes():
    q_emb = embeddings(4, 8, seed=10).requires_grad_()
    in_batch_negatives_loss(q_emb, embeddings(4, 8, seed=11)).backward()
    assert q_emb.grad is not None and q_emb.grad.shape == (4, 8)
    with pytest.raises(ValueError):
        in_batch_negatives_loss(embeddings(4, 8), embeddings(3, 8))  # fewer documents than queries
