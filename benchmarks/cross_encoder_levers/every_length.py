"""The cross-encoder's second stage (levers 3 and 4 together) with a setting changed: ``recipes.second_stage``,
which ``python -m xencoder_lab.recipes cross-encoder`` runs with the recipe's own settings
(``settings.CROSS_ENCODER``), here written to another folder. The folder is a checkpoint folder, as the course's:
fp16 weights and a manifest (settings, hardware, wall time, validation before and after), read by
``load_cross_encoder`` and ``eval28.py``. It starts from the first stage, ``data/checkpoints/cross-encoder-first-
stage`` (``recipe_training.cross_encoder_start`` says how to restore its weights).

usage: every_length.py OUT [KEY=VALUE ...]      a setting changed, e.g. medquad_queries=0 title_queries=0 (lever 3)
MedQuAD is read from $XLAB_DATA/medquad."""
import sys

from xencoder_lab.recipe_training import cross_encoder_training_probe
from xencoder_lab.recipes import second_stage
from xencoder_lab.settings import CROSS_ENCODER

if __name__ == "__main__":
    settings = CROSS_ENCODER.replace(**dict(arg.split("=", 1) for arg in sys.argv[2:]))
    command = " ".join(["python benchmarks/cross_encoder_levers/every_length.py", *sys.argv[1:]])
    manifest = second_stage(settings, sys.argv[1], command, cross_encoder_training_probe(settings))
    print("wrote", sys.argv[1], "in", manifest["train_seconds"], "s; validation",
          [e for e in manifest["log"] if "validation" in e], flush=True)
