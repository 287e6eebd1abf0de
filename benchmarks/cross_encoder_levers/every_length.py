"""The cross-encoder's second stage (levers 3 and 4 together, ``settings.EveryLengthRecipe``): the committed
cross-encoder trained on, on a CPU, with documents of every length among its claims' groups and as many label-free
groups (titles -> texts, MedQuAD questions -> answers), by the package's own trainer
(``recipe_training.train_cross_encoder_recipe``). Writes a checkpoint folder that ``load_cross_encoder`` and
``eval28.py`` read: fp16 weights and a manifest (settings, hardware, wall time, the validation log: the fine-tuned
bi-encoder's top 100 reranked for the 80 held-out claims, before and after), as a course checkpoint's.

usage: every_length.py OUT [KEY=VALUE ...]      a setting changed, e.g. medquad_queries=0 title_queries=0 (lever 3)
MedQuAD is read from $XLAB_DATA/medquad."""
import datetime
import sys
import time

import torch

from xencoder_lab import checkpoints, recipe_data
from xencoder_lab.recipe_training import cross_encoder_training_probe, train_cross_encoder_recipe
from xencoder_lab.settings import CROSS_ENCODER_EVERY_LENGTH

if __name__ == "__main__":
    OUT = sys.argv[1]
    settings = CROSS_ENCODER_EVERY_LENGTH.replace(**dict(arg.split("=", 1) for arg in sys.argv[2:]))
    command = " ".join(["python benchmarks/cross_encoder_levers/every_length.py", *sys.argv[1:]])
    first = {"training_probe": cross_encoder_training_probe(settings),  # first: the code may change during the run
             "data_probe": recipe_data.data_digest("cross-encoder", settings)}
    start = time.perf_counter()
    model, trainable, log = train_cross_encoder_recipe(settings)
    train_seconds = round(time.perf_counter() - start)
    with torch.no_grad():  # the probe of exactly what is stored: the fp16 weights
        for name, param in model.named_parameters():
            if name in trainable:
                param.copy_(param.half().float())
    manifest = {
        "recipe": "cross-encoder, second stage", "command": command, "settings": settings.asdict(),
        "steps": settings.steps, "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "init": checkpoints.weights_digest(checkpoints.CHECKPOINTS / settings.init),
        "train_seconds": train_seconds, "stored": "encoder layers, head, scale; fp16",
        "log": log, "probe": checkpoints.probe_outputs(model), **first,
    }
    checkpoints.save_checkpoint(model, trainable, manifest, OUT)
    print("wrote", OUT, "in", manifest["train_seconds"], "s; validation", [e for e in log if "validation" in e],
          flush=True)
