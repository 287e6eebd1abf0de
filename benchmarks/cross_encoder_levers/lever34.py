"""Levers 3 and 4 together, on a CPU budget: the committed cross-encoder trained on for STEPS steps on its claims
with documents of every length (lever3.every_length_groups: one pass over the 824 judgments) and as many
label-free groups (lever4.label_free_groups: 412 titles -> texts, 412 MedQuAD questions -> answers), two groups a
step drawn at random. The warm-start cosine stays (no handover).

usage: lever34.py STEPS OUT      (MedQuAD from $XLAB_DATA/medquad)"""
import sys

import torch
from lever3 import every_length_groups
from lever4 import label_free_groups, train_and_save

from xencoder_lab.course_models import load_bi_encoder

if __name__ == "__main__":
    STEPS, OUT = int(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(2)
    torch.manual_seed(1)
    claims = every_length_groups(1)  # two passes, each judgment drawn twice
    claims = claims[: len(claims) // 2]  # the first pass: each judgment once
    groups = claims + label_free_groups(len(claims) // 2, load_bi_encoder())
    print(len(claims), "claim groups,", len(groups), "groups", flush=True)
    train_and_save(groups, STEPS, OUT)
