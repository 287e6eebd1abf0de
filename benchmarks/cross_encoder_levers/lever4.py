"""Lever 4 of the cross-encoder rebuild, alone, on a CPU budget: the committed cross-encoder trained on for STEPS
steps with label-free pairs mixed into its own recipe's groups, one claim group and one label-free group a step:
in turn, an abstract's title as the query for its text (abstracts no train or validation claim cites, negatives
mined by the fine-tuned bi-encoder, every text without its title, as notebook 06's students learn) and a MedQuAD
question for its answer (negatives: BM25's best-ranked other answers, outside the question's own document). The
warm-start cosine stays (no handover). Half the groups are claims, half label-free, drawn at random each step.

usage: lever4.py STEPS OUT      (MedQuAD from $XLAB_DATA/medquad)"""
import json
import random
import sys
import time

import torch

from xencoder_lab import protocol
from xencoder_lab.bi_encoder import encode_corpus
from xencoder_lab.bm25 import BM25
from xencoder_lab.course_models import load_bi_encoder, load_cross_encoder
from xencoder_lab.data import load_beir, split_validation
from xencoder_lab.negatives import mine_negatives
from xencoder_lab.recipe_data import cross_encoder_groups
from xencoder_lab.settings import CROSS_ENCODER
from xencoder_lab.training import train_groups

N_NEG = CROSS_ENCODER.negatives


def source(doc_id):  # "A-CancerGov:0000001_1-2" -> "CancerGov:0000001_1": one document's questions
    return doc_id.removeprefix("A-").rsplit("-", 1)[0]


def label_free_groups(n: int, bi) -> list:
    """n title -> text groups, then n MedQuAD question -> answer groups (n <= 450)."""
    rng = random.Random(1)
    # titles -> texts, from abstracts no train or validation claim cites
    s = CROSS_ENCODER
    train, validation = split_validation(load_beir("scifact", "train"), s.validation_queries, s.seed)
    doc_ids = list(train.corpus)
    cited = protocol.relevant_documents(train) | protocol.relevant_documents(validation)
    pool = [d for d in doc_ids if d not in cited and train.corpus[d].get("title", "").strip()
            and train.corpus[d].get("text", "").strip()]
    chosen = rng.sample(pool, 450)
    column = {d: i for i, d in enumerate(doc_ids)}
    t_emb = bi.encode_queries([train.corpus[d]["title"] for d in chosen], show_progress=False)  # (T, D)
    t_scores = t_emb @ encode_corpus(bi, train).T  # (T, N)
    t_negs = mine_negatives(t_scores, [column[d] for d in chosen], [{column[d]} for d in chosen], N_NEG,
                            CROSS_ENCODER.negative_margin)
    titles = [(train.corpus[d]["title"], train.corpus[d]["text"], [train.corpus[doc_ids[c]]["text"] for c in negs])
              for d, negs in zip(chosen, t_negs)]

    # MedQuAD question -> answer, BM25 negatives from other documents
    med = load_beir("medquad", "all")
    answers = list(med.corpus)
    asked = rng.sample(sorted(med.qrels), 450)
    bm25 = BM25([med.corpus[a]["text"] for a in answers], answers)
    ids, _ = bm25.search([med.queries[q] for q in asked], k=200)

    medquad = []
    for q, ranked in zip(asked, ids):
        answer = next(iter(med.qrels[q]))
        negs = [a for a in ranked if source(a) != source(answer) and med.corpus[a]["text"].strip()][:N_NEG]
        medquad.append((med.queries[q], med.corpus[answer]["text"], [med.corpus[a]["text"] for a in negs]))
    assert all(len(n) == N_NEG for _, _, n in medquad), "a MedQuAD question with too few BM25 negatives"
    return titles[:n] + medquad[:n]


def train_and_save(groups: list, steps: int, out: str) -> None:
    """Train the committed cross-encoder on groups, two a step drawn at random; save OUT.pt and OUT.json."""
    model = load_cross_encoder()
    start = time.time()
    log = train_groups(model, groups, "listwise", groups_per_step=2, lr=3e-5, head_lr=1e-3, steps=steps, warmup=10,
                       seed=1, log_every=10, show_progress=False)
    seconds = time.time() - start
    torch.save(model.state_dict(), out + ".pt")
    json.dump({"steps": steps, "seconds": seconds, "scale": float(model.scale), "log": log},
              open(out + ".json", "w"), default=str)
    print("done", seconds, flush=True)


if __name__ == "__main__":
    STEPS, OUT = int(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(2)
    torch.manual_seed(1)
    bi = load_bi_encoder()
    claims, _ = cross_encoder_groups(bi, CROSS_ENCODER)
    groups = claims + label_free_groups(len(claims) // 2, bi)
    print(len(claims), "claim groups,", len(groups), "groups", flush=True)
    train_and_save(groups, STEPS, OUT)
