"""Tests for xencoder_lab.losses: InfoNCE against sentence-transformers' MultipleNegativesRankingLoss."""

import warnings

import pytest
import torch
import torch.nn.functional as F

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer import losses as st_losses
except ImportError:
    from sentence_transformers import losses as st_losses

from xencoder_lab.losses import corpus_softmax_loss, in_batch_negatives_loss


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


def test_corpus_softmax_is_in_batch_negatives_when_the_corpus_is_the_batch():
    q_emb, d_emb = embeddings(4, 8, seed=12), embeddings(6, 8, seed=13)  # 4 positives, then 2 more documents
    torch.testing.assert_close(corpus_softmax_loss(q_emb, d_emb, torch.arange(4), 0.05),
                               in_batch_negatives_loss(q_emb, d_emb, 0.05))


def test_corpus_softmax_masks_other_relevant_documents_only():
    q_emb, d_emb, positives = embeddings(2, 8, seed=14), embeddings(5, 8, seed=15), torch.tensor([3, 0])
    exclude = torch.zeros(2, 5, dtype=torch.bool)
    exclude[0, [1, 3]] = True  # document 1 is also relevant to query 0; its own positive 3 stays in
    s = q_emb @ d_emb.T / 0.05
    expected = -(s[0, 3] - torch.logsumexp(s[0, [0, 2, 3, 4]], 0) + s[1, 0] - torch.logsumexp(s[1], 0)) / 2
    torch.testing.assert_close(corpus_softmax_loss(q_emb, d_emb, positives, 0.05, exclude), expected)
    assert corpus_softmax_loss(q_emb, d_emb, positives, 0.05) > expected  # without the mask, 1 counts against
    with pytest.raises(ValueError, match="positives"):
        corpus_softmax_loss(q_emb, d_emb, torch.tensor([0]))
