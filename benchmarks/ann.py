"""Approximate search against exact: recall of the exact top 10, latency per query, bytes per vector, build time.

    python benchmarks/ann.py                          # SciFact size: the corpus's 5,183 fine-tuned embeddings
    python benchmarks/ann.py --n 1000000              # 1M vectors made from them (replicate, below)
    python benchmarks/ann.py --n 200000 --data random --queries 100 --ef 64,256 --nprobe 16,64

Queries: SciFact's test claims (300), encoded by the course bi-encoder (``course_models.load_bi_encoder``), the model
that embedded the corpus. Corpus: the first N of the 5,183 real embeddings (``corpus_embeddings``, fine-tuned)
while N <= 5,183; past that, synthetic, made from them (``--data``):

- ``replicate`` (the default): row i is real embedding (i mod 5,183) plus seeded Gaussian noise drawn with the
  real embeddings' own covariance, scaled by ``--noise`` (0.5), then renormalised. The noise follows the
  directions in which real embeddings vary, so the spectrum (how many directions matter: what makes an ANN index's
  job easy or hard) stays the corpus's; at 0.5 a copy keeps a cosine of about 0.9 with its source and 0.8 with
  its sibling copies, nearer than SciFact's nearest neighbours (median 0.61), as in a larger, denser corpus.
- ``random``: unit vectors uniform on the sphere, no structure at all: the hardest case for any ANN index, as
  the exact top 10 are barely nearer than the rest. Real embeddings never look like this.

Indexes (``DenseRetriever``): ``Flat`` (exact: the baseline and the ground truth), ``HNSW{M}`` at each
``--ef`` (efSearch; efConstruction is FAISS's default, 40), ``IVF{nlist},Flat`` and ``IVF{nlist},PQ{m}`` at each
``--nprobe``. nlist defaults to 4 sqrt(N) rounded to a power of two (256 for SciFact, 4096 for 1M), trained on a
seeded sample of ``--train-per-list`` (40) vectors a list. FAISS runs on ``--threads`` (2) for building; a
single query runs on one thread in every index here (FAISS spreads a search over queries).

Prints one row per index and setting, measured by ``xencoder_lab.ann.measure_indexes`` (the function notebook 06
uses): build time (train + add, s; the same for every setting of one index), bytes per vector (serialised index / N,
whole bytes), recall@10 (share of Flat's top 10 found), p50 and p95 latency of one query searched alone (ms: one
claim per ``DenseRetriever.search`` call, ids included, as a user meets it; after a warm-up of 5), and the
speed-up, Flat's p50 / this p50. Then which rows reach recall@10 >= 0.95 at a speed-up >= 10. Only one index is
held at a time; at 1M the run takes 7 to 8 minutes (``random``: 11) and 4 GB on 2 cores, most of it building:
HNSW32 100 s to 460 s (longer the less clustered the data), each IVF 60-80 s (k-means on 4096 lists).

Replicated data is clustered by construction (193 copies of each abstract at 1M): that helps IVF, whose lists
follow the clusters, and hurts HNSW, whose graph links mostly within a cluster; a larger ``--noise`` blurs the
clusters (at 1.0 a copy keeps a cosine of about 0.7 with its source, 0.5 with a sibling).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from xencoder_lab import corpus_embeddings, faiss_index
from xencoder_lab.ann import measure_indexes, nlist
from xencoder_lab.course_models import load_bi_encoder
from xencoder_lab.data import load_beir
from xencoder_lab.retrieval import synthetic_embeddings

K = 10


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=None, help="corpus size (default: the 5,183 real embeddings)")
    parser.add_argument("--data", choices=["replicate", "random"], default="replicate", help="past 5,183 vectors")
    parser.add_argument("--noise", type=float, default=0.5, help="replicate: noise scale, times the covariance's")
    parser.add_argument("--queries", type=int, default=None, help="first Q test claims (default: all 300)")
    parser.add_argument("--indexes", default="hnsw,ivf,ivfpq", help="which to compare with Flat")
    parser.add_argument("--hnsw-m", type=int, default=32, help="HNSW neighbours per node (M)")
    parser.add_argument("--ef", default="16,32,64,128,256", help="HNSW efSearch values")
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default: 4 sqrt(N), a power of two)")
    parser.add_argument("--nprobe", default="1,4,16,32,64", help="IVF nprobe values")
    parser.add_argument("--pq", type=int, default=48, help="IVF-PQ bytes per code (m), dividing D")
    parser.add_argument("--train-per-list", type=int, default=40, help="IVF training vectors per list")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    faiss_index.FAISS_THREADS = args.threads
    torch.set_num_threads(args.threads)
    test = load_beir("scifact", "test")
    claims = list(test.queries.values())[: args.queries]
    q_emb = load_bi_encoder(device="cpu").encode_queries(claims, show_progress=False)  # (Q, D)
    real = corpus_embeddings.load()[1]["fine-tuned"]  # (5183, D)
    n = args.n or len(real)
    if n <= len(real):
        d_emb, made = real[:n], f"the first {n:,} real SciFact embeddings (fine-tuned bi-encoder)"
    else:
        d_emb = synthetic_embeddings(real, n, args.data, args.noise)
        made = (f"{n:,} synthetic: the {len(real):,} real embeddings replicated with seeded noise of their own "
                f"covariance x {args.noise}, renormalised" if args.data == "replicate" else
                f"{n:,} synthetic: random unit vectors (uniform on the sphere, no structure: the hardest case)")
        if args.data == "replicate" and n >= 2 * len(real):
            rows = np.arange(len(real))  # row i and row i + 5,183 are two copies of real embedding i
            made += (f"; median cosine of a copy with its source {np.median((d_emb[rows] * real).sum(1)):.2f}, "
                     f"with a sibling copy {np.median((d_emb[rows] * d_emb[rows + len(real)]).sum(1)):.2f}")
    lists = args.nlist or nlist(n)
    train = args.train_per_list * lists
    print(f"corpus: {made}\nqueries: {len(claims)} SciFact test claims, one at a time; recall@{K} of Flat's top "
          f"{K}; {args.threads} FAISS threads; IVF nlist {lists}, trained on {min(train, n):,} vectors", flush=True)

    knobs = {"hnsw": (f"HNSW{args.hnsw_m}", "efSearch", args.ef), "ivf": (f"IVF{lists},Flat", "nprobe", args.nprobe),
             "ivfpq": (f"IVF{lists},PQ{args.pq}", "nprobe", args.nprobe)}
    plans = [("Flat", None)] + [(key, [{knob: int(value)} for value in values.split(",")])
                                for key, knob, values in (knobs[name] for name in args.indexes.split(","))]
    header = f"{'index':18} {'setting':14} {'build s':>8} {'bytes/vec':>10} {'recall@10':>9} {'p50 ms':>8} " \
             f"{'p95 ms':>8} {'speed-up':>8}"
    rows = []

    def report(label, row):  # one table row as each index setting is measured
        key, _, setting = label.partition(" ")
        rows.append(dict(index=key, setting=setting or "exact", build=row["build s"], bytes=row["bytes/vector"],
                         recall=row[f"recall@{K}"], p50=row["ms p50"], p95=row["ms p95"], speedup=row["speed-up"]))
        r = rows[-1]
        print(f"{key:18} {r['setting']:14} {r['build']:8.1f} {r['bytes']:10.1f} {r['recall']:9.3f} {r['p50']:8.3f} "
              f"{r['p95']:8.3f} {r['speedup']:7.1f}x", flush=True)

    print(header, flush=True)
    measure_indexes(d_emb, q_emb, plans, k=K, train_size=train, warmup=5, on_row=report)

    good = [r for r in rows[1:] if r["recall"] >= 0.95 and r["speedup"] >= 10]
    print(f"\nrecall@{K} >= 0.95 at >= 10x Flat's speed: " + (", ".join(
        f"{r['index']} {r['setting']} ({r['recall']:.3f}, {r['speedup']:.0f}x)" for r in good) or "none"))
    return rows


if __name__ == "__main__":
    main()
