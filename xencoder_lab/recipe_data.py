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
from .bm25 import BM25
from .course_models import load_bi_encoder, load_cross_encoder
from .cross_encoder import score_groups
from .data import Dataset, document_text, load_beir, sentences, split_validation
from .negatives import mine_groups, mine_hard_negatives, mine_negatives
from .retrieval import dense_run
from .settings import (
    SETTINGS,
    CrossEncoderRecipe,
    Distillation,
    EveryLengthRecipe,
    PairRecipe,
    QueryTowerRecipe,
    Recipe,
)
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


def _judged_and_scores(bi: BiEncoder, settings: CrossEncoderRecipe):
    """(train, validation, judged pairs, scores (P, N)): the cross-encoder recipes' split (validation claims at
    random), every train judgment ``(claim id, doc id)`` outside validation, and the bi-encoder's scores of the
    corpus for each judgment's claim."""
    train, validation = split_validation(
        load_beir(settings.dataset, "train"), settings.validation_queries, settings.seed
    )
    judged = [(qid, doc_id) for qid, docs in train.qrels.items() for doc_id, grade in docs.items() if grade > 0]
    scores = bi.encode_queries([train.queries[q] for q, _ in judged]) @ encode_corpus(bi, train).T  # (P, N)
    return train, validation, judged, scores


def cross_encoder_groups(bi: BiEncoder, settings: CrossEncoderRecipe):
    """(groups, validation split): for each train claim and relevant abstract, the ``negatives`` best-ranked
    abstracts the bi-encoder gets wrong (``negatives.mine_groups``); validation claims drawn at random."""
    train, validation, judged, scores = _judged_and_scores(bi, settings)
    return mine_groups(train, judged, scores, settings.negatives, settings.negative_margin), validation


def title_groups(ds: Dataset, cited: set[str], miner: BiEncoder, n: int, negatives: int, margin: float | None,
                 seed: int, spread: int = 0, depth: int = 100) -> list[tuple[str, str, list[str]]]:
    """Label-free groups ``(title, text, [negative texts])``: the title of an abstract outside ``cited`` as the
    query for its own text, negatives the texts ``miner`` ranks best for the title (``negatives.mine_negatives``,
    with ``spread`` more from its top ``depth``). Every text goes without its title, so the title is not simply
    found again. ``n`` abstracts with both a title and a text, drawn with ``seed`` (fewer when fewer have both)."""
    doc_ids = list(ds.corpus)
    pool = [d for d in doc_ids if d not in cited and ds.corpus[d].get("title", "").strip()
            and ds.corpus[d].get("text", "").strip()]
    chosen = random.Random(seed).sample(pool, min(n, len(pool)))
    column = {d: i for i, d in enumerate(doc_ids)}
    titles = [ds.corpus[d]["title"] for d in chosen]
    scores = miner.encode_queries(titles, show_progress=False) @ encode_corpus(miner, ds).T  # (T, N), corpus cached
    mined = mine_negatives(scores, [column[d] for d in chosen], [{column[d]} for d in chosen], negatives, margin,
                           spread, depth, seed)
    text = lambda c: ds.corpus[doc_ids[c]]["text"]  # noqa: E731
    return [(t, ds.corpus[d]["text"], [text(c) for c in negs]) for t, d, negs in zip(titles, chosen, mined)]


def medquad_groups(n: int, negatives: int, seed: int, spread: int = 0,
                   depth: int = 100) -> list[tuple[str, str, list[str]]]:
    """Label-free groups from MedQuAD (optional training data, ``$XLAB_DATA/medquad``): ``n`` questions drawn
    with ``seed``, each with its answer and the ``negatives`` answers BM25 ranks best for it among the other
    NIH documents' (a document's answers share its topic: id ``A-<document>-<n>``), duplicates of the answer
    and empty answers left out; then ``spread`` more drawn at random (seeded) from the rest of BM25's top
    ``depth`` (fewer when it runs out).

    Raises:
        ValueError: a question whose BM25 top 200 holds fewer than ``negatives`` usable answers.
    """
    med = load_beir("medquad", "all")

    def source(doc_id):  # "A-CancerGov:0000001_1-2" -> "CancerGov:0000001_1"
        return doc_id.removeprefix("A-").rsplit("-", 1)[0]

    answered = sorted(q for q, docs in med.qrels.items() if any(med.corpus.get(d, {}).get("text", "").strip()
                                                                for d in docs))
    asked = random.Random(seed).sample(answered, min(n, len(answered)))
    answers = list(med.corpus)
    ranked, _ = BM25([med.corpus[a]["text"] for a in answers], answers).search([med.queries[q] for q in asked], k=200)
    rng, groups = random.Random(seed), []
    for q, top in zip(asked, ranked):
        answer = next(d for d in med.qrels[q] if med.corpus.get(d, {}).get("text", "").strip())
        positive = med.corpus[answer]["text"]
        usable = [rank for rank, a in enumerate(top)
                  if source(a) != source(answer) and med.corpus[a]["text"].strip() not in ("", positive.strip())]
        if len(usable) < negatives:
            raise ValueError(f"MedQuAD question {q}: {len(usable)} usable answers in BM25's top 200, need {negatives}.")
        rest = [rank for rank in usable[negatives:] if rank < depth]
        picked = usable[:negatives] + (rng.sample(rest, min(spread, len(rest))) if spread else [])
        groups.append((med.queries[q], positive, [med.corpus[top[rank]]["text"] for rank in picked]))
    return groups


def every_length_groups(bi: BiEncoder, settings: EveryLengthRecipe):
    """(groups, validation split): the second-stage cross-encoder's data. Each train judgment's group as
    ``cross_encoder_groups`` mines it (same split, same negatives, then ``spread_negatives`` drawn from the
    fine-tuned bi-encoder's top ``spread_depth``: ``negatives.mine_negatives``), with documents of every length:
    of its negatives, ``bare_negatives`` cut to the bare title and ``first_sentence_negatives`` to title and first
    sentence (short and hard), at random places; its positive cut to title and first sentence in a
    ``first_sentence_positives`` share. Then ``title_queries`` title -> text and ``medquad_queries`` MedQuAD
    groups (``title_groups``, ``medquad_groups``, with as many spread negatives), label-free."""
    train, validation, judged, scores = _judged_and_scores(bi, settings)
    doc_ids = list(train.corpus)
    column = {d: i for i, d in enumerate(doc_ids)}
    mined = mine_negatives(scores, [column[d] for _, d in judged],
                           [{column[d] for d in train.qrels[q]} for q, _ in judged], settings.negatives,
                           settings.negative_margin, settings.spread_negatives, settings.spread_depth,
                           settings.seed)  # as mine_groups mines them (then spread ones): columns, not yet texts
    rng = random.Random(settings.seed)
    title, text = (lambda d: train.corpus[d].get("title", "")), (lambda d: train.corpus[d].get("text", ""))
    cuts = {"bare": lambda d: document_text({"title": title(d)}) or document_text(train.corpus[d]),  # untitled: all
            "first": lambda d: document_text({"title": title(d), "text": sentences(text(d))[0]}),
            "full": lambda d: document_text(train.corpus[d])}
    groups = []
    for (q, d), negs in zip(judged, mined):
        kinds = (["bare"] * settings.bare_negatives + ["first"] * settings.first_sentence_negatives
                 + ["full"] * (len(negs) - settings.bare_negatives - settings.first_sentence_negatives))
        rng.shuffle(kinds)
        negatives = [cuts[kind](doc_ids[c]) for kind, c in zip(kinds, negs)]
        positive = cuts["first" if rng.random() < settings.first_sentence_positives else "full"](d)
        groups.append((train.queries[q], positive, negatives))
    cited = protocol.relevant_documents(train) | protocol.relevant_documents(validation)
    spread = (settings.spread_negatives, settings.spread_depth)
    groups += title_groups(train, cited, bi, settings.title_queries, settings.negatives, settings.negative_margin,
                           settings.seed, *spread)
    groups += medquad_groups(settings.medquad_queries, settings.negatives, settings.seed, *spread)
    return groups, validation


def cross_encoder_training_data(bi: BiEncoder, settings: CrossEncoderRecipe):
    """(groups, validation split, the bi-encoder's validation run): ``cross_encoder_groups`` and the first stage
    the recipe's validation reranks (the bi-encoder's top ``rerank_depth``)."""
    make = every_length_groups if isinstance(settings, EveryLengthRecipe) else cross_encoder_groups
    groups, validation = make(bi, settings)  # the second stage's groups, or the first's
    return groups, validation, dense_run(bi, validation, k=settings.rerank_depth)


def distillation_groups(settings: Distillation):
    """(groups, validation split): the groups both students of notebook 06 learn from, before the teacher scores
    them (``distillation_data``).

    Two kinds of group ``(query, positive, [negatives])``: every train judgment outside validation, negatives
    mined by the fine-tuned bi-encoder (as for the cross-encoder, then ``spread_negatives`` drawn from its top
    ``spread_depth``); and ``title_queries`` label-free ones, the
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
    spread = (settings.spread_negatives, settings.spread_depth)
    groups = mine_groups(train, judged, scores, settings.negatives, settings.negative_margin, *spread, settings.seed)

    cited = protocol.relevant_documents(train) | protocol.relevant_documents(validation)
    groups += title_groups(train, cited, miner, settings.title_queries, settings.negatives,
                           settings.negative_margin, settings.seed, *spread)
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


SKETCH = 128  # hashes kept of the mined negatives


def data_digest(name: str, settings: Recipe | None = None) -> dict | None:
    """What recipe ``name`` trains on and holds out with ``settings`` (default: its own), in two parts that a
    checkpoint's manifest keeps (``data_probe``) and a test recomputes, so a change to splitting or mining fails a
    test before anyone retrains:

    - ``"digest"``: a 16-hex sha256 of the training texts and positives, how many negatives each row has and the
      validation claims' ids, in order. Exact.
    - ``"negatives"``: a sketch of the mined negatives as (row, text) pairs: the ``SKETCH`` smallest of their
      64-bit hashes. Mining ranks by floating-point scores, and a CPU that rounds otherwise swaps a near-tie now
      and then (one bi-encoder negative in 830 moves when its claims' embeddings move by 1e-7), so two machines'
      lists are compared by the share of pairs they hold in common (``sketch_overlap``); another margin, depth or
      miner moves most of them.

    None for the poly-encoder, whose miner is the untrained poly-encoder itself (its corpus would be encoded anew);
    its data is the bi-encoder recipe's, made by the same function.
    """
    settings = SETTINGS[name] if settings is None else settings
    if name in ("bi-encoder", "colbert"):
        pairs, negatives, validation = bi_encoder_training_data(
            BiEncoder(pooling=getattr(settings, "pooling", "mean"), max_length=settings.max_length), settings)
        parts, negatives = [pairs], [[n] for n in negatives or []]
    elif name == "query-tower":
        queries, positives, relevant, _, validation = query_tower_training_data(
            BiEncoder(pooling=settings.pooling, max_length=settings.max_length, shared=False), settings)
        parts, negatives = [queries, positives, [sorted(r) for r in relevant]], []
    elif name in ("cross-encoder", "cross-encoder-first-stage", "small-cross-encoder", "distilled-bi-encoder"):
        if name in ("small-cross-encoder", "distilled-bi-encoder"):
            groups, validation = distillation_groups(settings)
        else:  # the second stage's data, or the first's
            make = every_length_groups if isinstance(settings, EveryLengthRecipe) else cross_encoder_groups
            groups, validation = make(load_bi_encoder(), settings)
        parts, negatives = [[(query, positive) for query, positive, _ in groups]], [n for _, _, n in groups]
    else:
        return None
    parts += [[len(n) for n in negatives], sorted(validation.queries)]
    hashes = sorted(hashlib.sha256(f"{row}\t{text}".encode()).hexdigest()[:16]
                    for row, texts in enumerate(negatives) for text in texts)  # 16 hex: sorted as 64-bit numbers
    return {"digest": hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16], "negatives": hashes[:SKETCH]}


def sketch_overlap(a: list[str], b: list[str]) -> float:
    """The share of pairs two lists of negatives hold in common (their Jaccard similarity), estimated from their
    sketches (``data_digest``'s ``"negatives"``, sorted hashes): of the k smallest hashes of both together, the
    share found in each, k the shorter sketch's length (Broder 1997). Two empty sketches agree.

    >>> sketch_overlap(["01", "02", "03", "04"], ["01", "02", "03", "05"])
    0.75
    >>> sketch_overlap([], [])
    1.0
    """
    k = min(len(a), len(b))
    if not k:
        return float(len(a) == len(b))
    both = sorted(set(a) | set(b))[:k]
    return sum(h in a and h in b for h in both) / k
