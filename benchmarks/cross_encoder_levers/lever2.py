"""Lever 2 of the cross-encoder rebuild on a CPU budget: the cross-encoder's first stage (the course checkpoint when
the study ran) trained on for STEPS steps on groups whose negatives are drawn from every depth of the first stages
it reranks (Gao et al. 2021, localized contrastive estimation): per group, DEPTH_NEG negatives uniformly from the
union of BM25's and the fine-tuned bi-encoder's top 100 (judged abstracts excluded) and RANDOM_NEG from the whole
corpus; a new draw each time a claim comes round. HANDOVER > 0 also hands the cosine term over to the head (lever 1
+ 2).

usage: lever2.py STEPS HANDOVER GROUPS OUT"""
import json
import random
import sys
import time

import torch

from xencoder_lab.bm25 import BM25
from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.data import document_text, load_beir, split_validation
from xencoder_lab.recipe_training import cross_encoder_start
from xencoder_lab.retrieval import dense_run
from xencoder_lab.settings import CROSS_ENCODER as CROSS_ENCODER_SECOND_STAGE
from xencoder_lab.settings import CROSS_ENCODER_FIRST_STAGE as CROSS_ENCODER
from xencoder_lab.training import train_groups

STEPS, HANDOVER, GROUPS, OUT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
DEPTH_NEG, RANDOM_NEG = 12, 3
torch.set_num_threads(2)
torch.manual_seed(1)
train, _ = split_validation(load_beir("scifact", "train"), CROSS_ENCODER.validation_queries, CROSS_ENCODER.seed)
doc_ids = list(train.corpus)
text = {d: document_text(train.corpus[d]) for d in doc_ids}
bm25 = BM25([text[d] for d in doc_ids], doc_ids)
qids = sorted(train.qrels)
bm25_ids, _ = bm25.search([train.queries[q] for q in qids], k=100)
dense = dense_run(load_bi_encoder(), train, k=100)
candidates = {q: sorted((set(b) | set(dense[q])) - set(train.qrels[q])) for q, b in zip(qids, bm25_ids)}
judged = [(q, d) for q in qids for d, g in train.qrels[q].items() if g > 0]
rng = random.Random(1)


def draw(q):
    negs = rng.sample(candidates[q], DEPTH_NEG)
    while len(negs) < DEPTH_NEG + RANDOM_NEG:
        d = rng.choice(doc_ids)
        if d not in train.qrels[q] and d not in negs:
            negs.append(d)
    return [text[d] for d in negs]


# one list of groups, drawn afresh for each pass over the claims: as many passes as the steps need
per_pass = len(judged)
passes = -(-STEPS * GROUPS // per_pass) + 1
groups = [(train.queries[q], text[d], draw(q)) for _ in range(passes) for q, d in judged]
print(len(judged), "judgments,", len(groups), "groups over", passes, "passes", flush=True)
model = cross_encoder_start(CROSS_ENCODER_SECOND_STAGE)  # the first stage's whole model
start = time.time()
log = train_groups(model, groups, "listwise", groups_per_step=GROUPS, lr=3e-5, head_lr=1e-3,
                   handover=HANDOVER or None, steps=STEPS, warmup=20, seed=1, log_every=10, show_progress=False)
seconds = time.time() - start
torch.save(model.state_dict(), OUT + ".pt")
json.dump({"steps": STEPS, "handover": HANDOVER, "groups_per_step": GROUPS, "seconds": seconds,
           "scale": None if model.scale is None else float(model.scale), "log": log},
          open(OUT + ".json", "w"), default=str)
print("done", seconds, flush=True)
