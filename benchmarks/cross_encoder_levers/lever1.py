"""Lever 1 of the cross-encoder rebuild, measured alone and on a CPU budget: the cross-encoder's first stage (the
course checkpoint when the study ran), trained on for STEPS more steps on its own recipe's groups while its warm-
start cosine term hands over to the [CLS] head (weight 1 -> 0 over HANDOVER steps, then removed): the saved model is
the plain head."""
import json
import sys
import time

import torch

from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.recipe_data import cross_encoder_groups
from xencoder_lab.recipe_training import cross_encoder_start
from xencoder_lab.settings import CROSS_ENCODER as CROSS_ENCODER_SECOND_STAGE
from xencoder_lab.settings import CROSS_ENCODER_FIRST_STAGE as CROSS_ENCODER
from xencoder_lab.training import train_groups

STEPS, HANDOVER, GROUPS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
OUT = sys.argv[4]
torch.set_num_threads(2)
torch.manual_seed(1)
groups, _ = cross_encoder_groups(load_bi_encoder(), CROSS_ENCODER)
print(len(groups), "groups", flush=True)
model = cross_encoder_start(CROSS_ENCODER_SECOND_STAGE)  # the first stage's whole model
start = time.time()
log = train_groups(model, groups, "listwise", groups_per_step=GROUPS, lr=3e-5, head_lr=1e-3, handover=HANDOVER,
                   steps=STEPS, warmup=20, seed=1, log_every=10, show_progress=False)
seconds = time.time() - start
assert model.scale is None
torch.save(model.state_dict(), OUT + ".pt")
json.dump({"steps": STEPS, "handover": HANDOVER, "groups_per_step": GROUPS, "seconds": seconds, "log": log},
          open(OUT + ".json", "w"), default=str)
print("done", seconds, flush=True)
