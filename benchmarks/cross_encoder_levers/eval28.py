"""Score a cross-encoder over the first stages it reranks and keep every pair's two logit terms.

usage: eval28.py MODEL OUT [COLUMNS]
MODEL: "old" (the first stage, data/checkpoints/cross-encoder-first-stage, its weights restored), a checkpoint
folder (every_length.py's) or a state-dict path (a lever's .pt; a plain-head model from lever1.py).
Writes OUT.npz (per column: query ids, doc ids, head, warm) as each column finishes; CACM first, then unseen,
then the rest of all. Run again with more columns, it keeps those OUT.npz has and scores the others."""
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xencoder_lab import protocol
from xencoder_lab.bm25 import BM25
from xencoder_lab.course_models import load_bi_encoder, load_cross_encoder
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.retrieval import dense_run

torch.set_num_threads(2)
MODEL, OUT = sys.argv[1], sys.argv[2]
WANT = sys.argv[3].split(",") if len(sys.argv) > 3 else ["CACM", "unseen", "all"]
test, train = load_beir("scifact", "test"), load_beir("scifact", "train")
columns = protocol.columns(test, train)
model = load_cross_encoder(MODEL if Path(MODEL).is_dir() else "data/checkpoints/cross-encoder-first-stage")
if MODEL != "old" and not Path(MODEL).is_dir():
    state = torch.load(MODEL)
    if "scale" not in state:
        model.scale = None
    model.load_state_dict(state)
tuned = load_bi_encoder()


def first_stages(ds):
    bm25 = BM25([document_text(d) for d in ds.corpus.values()], list(ds.corpus))
    ids, _ = bm25.search([ds.queries[q] for q in ds.queries], k=100)
    return {"bm25": dict(zip(ds.queries, ids)), "tuned": dense_run(tuned, ds, k=100)}


arrays = dict(np.load(OUT + ".npz")) if Path(OUT + ".npz").exists() else {}  # a column already scored is kept
scifact = [name for name in WANT if name != "CACM"]  # the SciFact columns share pairs (unseen is inside all)
done = {(q, d) for name in scifact if name + "_q" in arrays for q, d in zip(arrays[name + "_q"], arrays[name + "_d"])}
for name in WANT:
    if name + "_q" in arrays:
        continue
    ds = columns[name]
    runs = first_stages(ds)
    pairs = sorted({(q, d) for run in runs.values() for q in run for d in run[q][:100]} - done)
    start = time.time()
    both = model.score_parts([ds.queries[q] for q, _ in pairs], [document_text(ds.corpus[d]) for _, d in pairs])
    print(name, len(pairs), "pairs", round(time.time() - start), "s", flush=True)
    done |= set(pairs) if name in scifact else set()
    arrays[name + "_q"] = np.array([q for q, _ in pairs])
    arrays[name + "_d"] = np.array([d for _, d in pairs])
    arrays[name + "_parts"] = both
    np.savez(OUT + ".npz", **arrays)
print("done", flush=True)
