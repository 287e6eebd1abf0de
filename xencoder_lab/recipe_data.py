"""What each course recipe trains on: the training data of every checkpoint, prepared from SciFact train with the
recipe's settings (``settings``), and the validation claims it holds out (notebooks 03, 04 and 06).

The bi-encoder and cross-encoder recipes hold out ``validation_queries`` training claims at random
(``data.split_validation``); the others hold them out by document (``protocol.split_validation_by_document``: no
validation claim's relevant abstract is a training positive). Negatives are mined by a retriever, with a margin
against false negatives (``negatives``). ``tests/test_recipe_data.py`` pins what each function returns on
SciFact, so a change to mining or splitting fails a test, not only a retrain.
"""

from __future__ import annotations

import hashlib
import json
import random

from . import checkpoints, protocol
from .bi_encoder import BiEncoder, encode_corpus
from .course_models import load_bi_encoder, load_cross_encoder
from .cross_encoder import score_groups
from .data import document_text, load_beir, split_validation
from .negatives import mine_groups, mine_hard_negatives, mine_negatives
from .retrieval import dense_run
from .settings import SETTINGS, CrossEncoderRecipe, Distillation, PairRecipe, QueryTowerRecipe, Recipe
from .training import corpus_queries


def bi_encoder_training_data(model: BiEncoder, settings: PairRecipe):
    """(pairs, hard negative texts, validation split): every train judgment outside validation, one mined
    negative each (ranked by ``model``, see ``negatives.mine_hard_negatives``); no negatives (None) when
    ``negative_depth`` is None: in-batch negatives only. Validation claims are drawn at random, or by document
    (``protocol.split_validation_by_document``) when the settings say ``validation="by document"``."""
    by_document = getattr(settings, "validation", None) == "by document"  # the poly-encoder and ColBERT
    split = protocol.split_validation_by_document if by_document else split_validation
    train, validation = split(load_beir(settings.dataset, "train"), settings.validation_queries, settings.seed)
    doc_ids = list(train.corpus)
    column = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    pairs = [(train.queries[qid], document_text(train.corpus[doc_id])) for qid, doc_id in judged]
    if settings.negative_depth is None:  # in-batch negatives only
        return pairs, None, validation
    d_emb = encode_corpus(model, train)  # (N, D), cached
    q_emb = model.encode_queries([train.queries[qid] for qid, _ in judged])  # (P, D)
    negatives = mine_hard_negatives(
        model.score(q_emb, d_emb),  # (P, N)
        positives=[column[doc_id] for _, doc_id in judged],
        relevant=[{column[d] for d in train.qrels[qid]} for qid, _ in judged],
        depth=settings.negative_depth,
        margin=settings.negative_margin,
        seed=settings.seed,
    )
    return pairs, [document_text(train.corpus[doc_ids[n]]) for n in negatives], validation


def query_tower_training_data(model: BiEncoder, settings: QueryTowerRecipe):
    """(queries, positive rows, relevant rows, corpus embeddings (N, D), validation split): one entry per train
    judgment outside the validation claims, rows indexing the corpus as ``encode_corpus`` embeds it; then, when
    ``corpus_queries`` names a kind (or a list of kinds), one label-free entry per document of the whole corpus
    and kind (``training.corpus_queries``: its title or its last sentence as the query for it). Those use no
    judgment, as domain adaptation on a target corpus does, so the abstracts of test claims are among them too."""
    train, validation = protocol.split_validation_by_document(
        load_beir(settings.dataset, "train"), settings.validation_queries, settings.seed
    )
    column = {doc_id: i for i, doc_id in enumerate(train.corpus)}
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    relevant = {qid: {column[d] for d, g in train.qrels[qid].items() if g > 0} for qid, _ in judged}
    kinds = settings.corpus_queries or []
    kinds = [kinds] if isinstance(kinds, str) else kinds
    label_free = [pair for kind in kinds for pair in corpus_queries(train, kind)]
    return (
        [train.queries[qid] for qid, _ in judged] + [query for query, _ in label_free],
        [column[doc_id] for _, doc_id in judged] + [column[doc_id] for _, doc_id in label_free],
        [relevant[qid] for qid, _ in judged] + [{column[doc_id]} for _, doc_id in label_free],
        encode_corpus(model, train),  # (N, D): the frozen document tower, cached
        validation,
    )


def cross_encoder_groups(bi: BiEncoder, settings: CrossEncoderRecipe):
    """(groups, validation split): for each train claim and relevant abstract, the ``negatives`` best-ranked
    abstracts the bi-encoder gets wrong (``negatives.mine_groups``); validation claims drawn at random."""
    train, validation = split_validation(
        load_beir(settings.dataset, "train"), settings.validation_queries, settings.seed
    )
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    scores = bi.encode_queries([train.queries[q] for q, _ in judged]) @ encode_corpus(bi, train).T  # (P, N)
    return mine_groups(train, judged, scores, settings.negatives, settings.negative_margin), validation


def cross_encoder_training_data(bi: BiEncoder, settings: CrossEncoderRecipe):
    """(groups, validation split, the bi-encoder's validation run): ``cross_encoder_groups`` and the first stage
    the recipe's validation reranks (the bi-encoder's top ``rerank_depth``)."""
    groups, validation = cross_encoder_groups(bi, settings)
    return groups, validation, dense_run(bi, validation, k=settings.rerank_depth)


def distillation_groups(settings: Distillation):
    """(groups, validation split): the groups both students of notebook 06 learn from, before the teacher scores
    them (``distillation_data``).

    Two kinds of group ``(query, positive, [negatives])``: every train judgment outside validation, negatives
    mined by the fine-tuned bi-encoder (as for the cross-encoder); and ``title_queries`` label-free ones, the
    title of an abstract no train or validation claim cites as the query for its text, the other texts' titles
    dropped too. Abstracts relevant to test claims may be among them: their titles are used, never a judgment.
    """
    train, validation = protocol.split_validation_by_document(
        load_beir(settings.dataset, "train"), settings.validation_queries, settings.seed
    )
    miner = load_bi_encoder(checkpoints.CHECKPOINTS / settings.miner)
    d_emb = encode_corpus(miner, train)  # (N, D), cached
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    scores = miner.encode_queries([train.queries[q] for q, _ in judged], show_progress=False) @ d_emb.T  # (P, N)
    groups = mine_groups(train, judged, scores, settings.negatives, settings.negative_margin)

    doc_ids = list(train.corpus)
    cited = protocol.relevant_documents(train) | protocol.relevant_documents(validation)
    pool = [d for d in doc_ids if d not in cited and train.corpus[d].get("title", "").strip()
            and train.corpus[d].get("text", "").strip()]
    chosen = random.Random(settings.seed).sample(pool, min(settings.title_queries, len(pool)))
    column = {d: i for i, d in enumerate(doc_ids)}
    titles = [train.corpus[d]["title"] for d in chosen]
    t_scores = miner.encode_queries(titles, show_progress=False) @ d_emb.T  # (T, N)
    negatives = mine_negatives(t_scores, [column[d] for d in chosen], [{column[d]} for d in chosen],
                               settings.negatives, settings.negative_margin)
    text = lambda c: train.corpus[doc_ids[c]]["text"]  # noqa: E731
    groups += [(t, train.corpus[d]["text"], [text(c) for c in negs]) for t, d, negs in zip(titles, chosen, negatives)]
    return groups, validation


def distillation_data(settings: Distillation):
    """(groups, the teacher's logits (G, 1 + negatives), validation split) for the students of notebook 06: the
    groups of ``distillation_groups``, scored once by the course cross-encoder (kept in the disk cache).

    Args:
        settings: a student recipe's settings (e.g. ``settings.DISTILLED_BI_ENCODER``); ``teacher`` names the
            teacher's checkpoint.

    Returns:
        ``(groups, teacher logits, validation)``: ``[(query, positive, [negatives])]``, a (G, 1 + negatives)
        float32 tensor, the positive in column 0, and the validation ``Dataset``.
    """
    groups, validation = distillation_groups(settings)
    teacher = load_cross_encoder(checkpoints.CHECKPOINTS / settings.teacher)
    return groups, score_groups(teacher, groups, cache=True, show_progress=None), validation


def data_digest(name: str, settings: Recipe | None = None) -> str | None:
    """A 16-hex sha256 of what recipe ``name`` trains on and holds out with ``settings`` (default: its own): the
    training texts, the mined negatives, the positives' rows and the validation claims' ids, in order. A
    checkpoint's manifest keeps it (``data_probe``) and a test recomputes it, so a change to splitting or mining
    fails a test before anyone retrains. None for the poly-encoder, whose miner is the untrained poly-encoder
    itself (its corpus would be encoded anew); its data is the bi-encoder recipe's, made by the same function.
    """
    settings = SETTINGS[name] if settings is None else settings
    if name in ("bi-encoder", "colbert"):
        pairs, negatives, validation = bi_encoder_training_data(
            BiEncoder(pooling=getattr(settings, "pooling", "mean"), max_length=settings.max_length), settings)
        parts = [pairs, negatives]
    elif name == "query-tower":
        queries, positives, relevant, _, validation = query_tower_training_data(
            BiEncoder(pooling=settings.pooling, max_length=settings.max_length, shared=False), settings)
        parts = [queries, positives, [sorted(r) for r in relevant]]
    elif name == "cross-encoder":
        groups, validation = cross_encoder_groups(load_bi_encoder(), settings)
        parts = [groups]
    elif name in ("small-cross-encoder", "distilled-bi-encoder"):
        groups, validation = distillation_groups(settings)
        parts = [groups]
    else:
        return None
    parts.append(sorted(validation.queries))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
