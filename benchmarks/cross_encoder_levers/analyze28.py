"""Read a model's pair terms and print, per column and first stage, nDCG@10 at depths 10, 20, 50, 100 for its logit
(or one of its parts), bare titles in CACM's top 10, paired intervals at depth 100 against the first stage and,
for every model after the first named, against the first named.

usage: analyze28.py NAME=FILE[:term] ...
FILE: eval28.py's OUT.npz, a pair-score file with both terms (``python -m xencoder_lab.pair_scores``'s, e.g.
every-length/pairs.npz; its SciFact test pairs give the columns all and unseen, its CACM pairs CACM), or
``shipped``: the course cross-encoder's pair scores (data/checkpoints/cross-encoder/pairs.npz).
term: full (head + warm, default), head, warm; debiased: the full logit minus a label-free length prior, the mean
full logit of the column's own pairs whose document has about as many words (bins of a half power of 2), which
asks how much of a collapse is the length bias; prior-val: the same prior fitted on the file's validation claims'
pairs only (a pair-score file's ``train-validation`` split: what a model could ship with)."""
import json
import sys

import numpy as np

from xencoder_lab import metrics, pair_scores, protocol
from xencoder_lab.bm25 import BM25
from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.cross_encoder import rerank
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.hybrid import Hybrid
from xencoder_lab.retrieval import dense_run, run_queries

test, train = load_beir("scifact", "test"), load_beir("scifact", "train")
columns = protocol.columns(test, train)
tuned = load_bi_encoder()


def length_bins(docs, corpus):
    words = np.array([len(document_text(corpus[d]).split()) for d in docs])
    return np.floor(2 * np.log2(words + 1)).astype(int)


def prior_of(logits, bins):
    # {bin: mean logit}; a bin the pairs lack takes the nearest one's mean
    means = {b: float(logits[bins == b].mean()) for b in set(bins.tolist())}
    return lambda b: means[min(means, key=lambda known: (abs(known - b), known))]


def column_terms(path):
    """{column: (query ids, doc ids, (P, 2) terms)} of an eval28 file or a pair-score file with both terms; plus the
    validation pairs' (doc ids, terms) of a pair-score file (else None)."""
    z = np.load(path)
    if "query_id" not in z.files:  # eval28.py's file
        found = [col for col in columns if col + "_q" in z.files]
        within = {"all": ["all", "unseen"]}  # eval28 scores all's pairs minus the unseen claims' ones it already has
        return {col: tuple(np.concatenate([z[c + part] for c in within.get(col, [col]) if c + "_q" in z.files])
                           for part in ("_q", "_d", "_parts")) for col in found}, None
    if "head" not in z.files:
        raise SystemExit(f"{path} holds the logit only: make it with both terms (python -m xencoder_lab.pair_scores)")
    both = np.stack([z["head"], z["warm"]], axis=1)  # (P, 2)
    out = {}
    for col, ds in columns.items():
        dataset = "cacm" if col == "CACM" else "scifact"
        keep = (z["dataset"] == dataset) & (z["split"] == "test") & np.isin(z["query_id"], list(ds.queries))
        out[col] = (z["query_id"][keep], z["doc_id"][keep], both[keep])
    held = z["split"] == "train-validation"
    return out, (z["doc_id"][held], both[held])


systems = {}
for arg in sys.argv[1:]:
    name, spec = arg.split("=", 1)
    path, _, term = spec.partition(":")
    term = term or "full"
    scores = {}  # {column: {query id: {doc id: value}}}
    if path == "shipped":
        for col in columns:
            scores[col] = pair_scores.terms(pair_scores.PATH, "cacm" if col == "CACM" else "scifact", "test")
    else:
        by_column, validation = column_terms(path)
        if term == "prior-val":
            if validation is None:
                raise SystemExit("prior-val needs a pair-score file (its validation claims' pairs)")
            v_docs, v_parts = validation
            prior = prior_of(v_parts.sum(1), length_bins(v_docs, train.corpus))
        for col, (qs, ds_, parts) in by_column.items():
            full = parts.sum(1)
            if term in ("debiased", "prior-val"):
                bins = length_bins(ds_, columns[col].corpus)
                own = prior if term == "prior-val" else prior_of(full, bins)
                value = full - np.array([own(b) for b in bins])
            else:
                value = {"full": full, "head": parts[:, 0], "warm": parts[:, 1]}[term]
            for q, d, v in zip(qs, ds_, value):
                scores.setdefault(col, {}).setdefault(q, {})[d] = float(v)
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
        reference = None  # the first named model's per-query nDCG@10 at depth 100
        for name, by_column in systems.items():
            scores = by_column.get(col, {})
            if not all(d in scores.get(q, {}) for q in ds.queries for d in first[q][:100]):
                print(f"    {name:24} (pairs missing)")
                continue
            row = {}
            for depth in (10, 20, 50, 100):
                run = rerank(first, scores, depth)
                row[depth] = metrics.evaluate(run, ds.qrels, ["ndcg@10"])["ndcg@10"]
            run = rerank(first, scores, 100)
            mine, against = metrics.per_query(run, ds.qrels, "ndcg@10"), None
            cmp = metrics.compare_scores(base, mine)
            extra = ""
            if col == "CACM":
                extra = f" bare/q {np.mean([len(set(run[q][:10]) & bare) for q in ds.queries]):.2f}"
            if reference is None:
                reference, reference_name = mine, name
            else:
                against = metrics.compare_scores(reference, mine)
                extra += f"  vs {reference_name} {against['gain']:+.3f} {against['95% interval']}"
            print(f"    {name:24} " + " ".join(f"@{k} {v:.3f}" for k, v in row.items())
                  + f"  vs first @100 {cmp['gain']:+.3f} {cmp['95% interval']}{extra}")
            out[f"{col}/{fname}/{name}"] = {"depths": row, "vs_first": cmp, "vs_" + reference_name: against}
json.dump(out, open("analysis.json", "w"), default=str, indent=1)
