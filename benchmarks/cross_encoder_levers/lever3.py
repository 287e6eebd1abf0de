"""Lever 3 of the cross-encoder rebuild, alone, on a CPU budget: the committed cross-encoder trained on for STEPS
steps on its own recipe's groups (the fine-tuned bi-encoder's mined negatives), with documents of every length:
in each group, SHORT of the 15 negatives are replaced by a bare title (of a mined negative: hard and short) and
FIRST by a title and first sentence; the positive is its title and first sentence in a fifth of the groups. The
warm-start cosine stays (no handover). A new draw for each pass over the claims.

usage: lever3.py STEPS GROUPS OUT      (every_length_groups: the groups alone, for lever34.py)"""
import json
import random
import re
import sys
import time

import torch

from xencoder_lab.bi_encoder import encode_corpus
from xencoder_lab.course_models import load_bi_encoder, load_cross_encoder
from xencoder_lab.data import document_text, load_beir, split_validation
from xencoder_lab.negatives import mine_negatives
from xencoder_lab.settings import CROSS_ENCODER
from xencoder_lab.training import train_groups

SHORT, FIRST = 4, 2


def every_length_groups(n_groups: int) -> list:
    """At least n_groups claim groups (whole passes over the train claims), documents of every length."""
    s = CROSS_ENCODER
    train, _ = split_validation(load_beir(s.dataset, "train"), s.validation_queries, s.seed)
    doc_ids = list(train.corpus)
    column = {d: i for i, d in enumerate(doc_ids)}
    bi = load_bi_encoder()
    judged = [(q, d) for q, docs in train.qrels.items() for d, g in docs.items() if g > 0]
    scores = bi.encode_queries([train.queries[q] for q, _ in judged], show_progress=False) @ encode_corpus(bi, train).T
    mined = mine_negatives(scores, [column[d] for _, d in judged],
                           [{column[d] for d in train.qrels[q]} for q, _ in judged], s.negatives, s.negative_margin)
    rng = random.Random(1)

    def full(d):
        return document_text(train.corpus[d])

    def bare(d):
        return document_text({"title": train.corpus[d].get("title", ""), "text": ""}) or full(d)

    def first(d):
        text = train.corpus[d].get("text", "")
        sentence = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]
        return document_text({"title": train.corpus[d].get("title", ""), "text": sentence})

    def group(q, d, negs):
        negs = [doc_ids[c] for c in negs]
        kinds = ["bare"] * SHORT + ["first"] * FIRST + ["full"] * (len(negs) - SHORT - FIRST)
        rng.shuffle(kinds)
        texts = [{"bare": bare, "first": first, "full": full}[k](n) for k, n in zip(kinds, negs)]
        positive = first(d) if rng.random() < 0.2 else full(d)
        return (train.queries[q], positive, texts)

    passes = -(-n_groups // len(judged)) + 1
    groups = [group(q, d, negs) for _ in range(passes) for (q, d), negs in zip(judged, mined)]
    print(len(judged), "judgments,", len(groups), "groups", flush=True)
    return groups


if __name__ == "__main__":
    STEPS, GROUPS, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(2)
    torch.manual_seed(1)
    groups = every_length_groups(STEPS * GROUPS)
    model = load_cross_encoder()
    start = time.time()
    log = train_groups(model, groups, "listwise", groups_per_step=GROUPS, lr=3e-5, head_lr=1e-3,
                       steps=STEPS, warmup=10, seed=1, log_every=10, show_progress=False)
    seconds = time.time() - start
    torch.save(model.state_dict(), OUT + ".pt")
    json.dump({"steps": STEPS, "groups_per_step": GROUPS, "seconds": seconds, "scale": float(model.scale), "log": log},
              open(OUT + ".json", "w"), default=str)
    print("done", seconds, flush=True)
