"""Read eval28.py's pair terms (one or more models) and print, per column and first stage, nDCG@10 at depths 10,
20, 50, 100 for each model's logit (and its parts), bare titles in CACM's top 10, paired intervals at depth 100.

usage: analyze28.py NAME=OUT.npz[:term] ...   term: full (head + warm, default), head, warm, or debiased: the full
logit minus a label-free length prior (the mean full logit of the column's pairs whose document has about as many
words, bins of a half power of 2), which asks how much of a collapse is the length bias; NAME=shipped: the
committed model's shipped logits (pairs.npz)."""
import json
import sys

import numpy as np

from xencoder_lab import metrics, protocol
from xencoder_lab.bm25 import BM25
from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.cross_encoder import rerank
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.hybrid import Hybrid
from xencoder_lab.retrieval import dense_run, run_queries

test, train = load_beir("scifact", "test"), load_beir("scifact", "train")
columns = protocol.columns(test, train)
tuned = load_bi_encoder()
systems = {}
for arg in sys.argv[1:]:
    name, spec = arg.split("=", 1)
    path, _, term = spec.partition(":")
    term = term or "full"
    scores = {}
    if path == "shipped":
        z = np.load("data/checkpoints/cross-encoder/pairs.npz")
        keep = z["split"] == "test"
        for q, d, v in zip(z["query_id"][keep], z["doc_id"][keep], z["logit"][keep]):
            scores.setdefault(q, {})[d] = float(v)
    else:
        z = np.load(path)
        for col in ("CACM", "unseen", "all"):
            if col + "_q" not in z.files:
                continue
            parts = z[col + "_parts"]
            if term == "debiased":
                corpus = columns[col].corpus
                words = np.array([len(document_text(corpus[d]).split()) for d in z[col + "_d"]])
                bins = np.floor(2 * np.log2(words + 1)).astype(int)
                prior = {b: parts.sum(1)[bins == b].mean() for b in set(bins.tolist())}
                value = parts.sum(1) - np.array([prior[b] for b in bins])
            else:
                value = {"full": parts.sum(1), "head": parts[:, 0], "warm": parts[:, 1]}[term]
            for q, d, v in zip(z[col + "_q"], z[col + "_d"], value):
                scores.setdefault(q, {})[d] = float(v)
    systems[name] = scores

out = {}
for col, ds in columns.items():
    bm25 = BM25([document_text(d) for d in ds.corpus.values()], list(ds.corpus))
    ids, _ = bm25.search([ds.queries[q] for q in ds.queries], k=100)
    firsts = {"bm25": dict(zip(ds.queries, ids)), "tuned": dense_run(tuned, ds, k=100),
              "hybrid": run_queries(Hybrid.over(ds, tuned, weight=0.5, fusion="z-score"), ds, 100)}
    bare = {d for d, doc in ds.corpus.items() if not doc.get("text", "").strip()}
    for fname, first in firsts.items():
        base = metrics.per_query(first, ds.qrels, "ndcg@10")
        line = f"{col:7} {fname:7} first stage {np.mean(list(base.values())):.3f}"
        if col == "CACM":
            line += f" bare/q {np.mean([len(set(first[q][:10]) & bare) for q in ds.queries]):.2f}"
        print(line)
        for name, scores in systems.items():
            if not all(d in scores.get(q, {}) for q in ds.queries for d in first[q][:100]):
                print(f"    {name:24} (pairs missing)")
                continue
            row = {}
            for depth in (10, 20, 50, 100):
                run = rerank(first, scores, depth)
                row[depth] = metrics.evaluate(run, ds.qrels, ["ndcg@10"])["ndcg@10"]
            run = rerank(first, scores, 100)
            cmp = metrics.compare_scores(base, metrics.per_query(run, ds.qrels, "ndcg@10"))
            extra = ""
            if col == "CACM":
                extra = f" bare/q {np.mean([len(set(run[q][:10]) & bare) for q in ds.queries]):.2f}"
            print(f"    {name:24} " + " ".join(f"@{k} {v:.3f}" for k, v in row.items())
                  + f"  vs first @100 {cmp['gain']:+.3f} {cmp['95% interval']}{extra}")
            out[f"{col}/{fname}/{name}"] = {"depths": row, "vs_first": cmp}
json.dump(out, open("analysis.json", "w"), default=str, indent=1)
