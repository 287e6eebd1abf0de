"""Latency and hit rate of the in-memory score cache against its size, on a repeated-query workload.

    python benchmarks/cache.py                       # 100 claims drawn with Zipf s = 1.1, BM25 top 20 reranked
    python benchmarks/cache.py --queries 150 --zipf 0.9 --sizes 0 200 800 3000

Search traffic repeats itself: a few queries come back often, most come once. The workload draws ``--queries``
claims from SciFact test's 300 with Zipf probabilities (the claim at rank r with probability proportional to
r^-s; claims are shuffled onto ranks with the seed). Each claim's BM25 top ``--depth`` is reranked by the course
cross-encoder (``course_models.load_cross_encoder``, its own ``max_length``) through ``Pipeline.search``, once per cache
size: ``ScoreCache(size)`` pairs, or none for size 0, the baseline. Every cache starts empty.

The sizes take turns on each query, in an order that rotates from query to query, so a change in the machine's
load hits them alike; they share the model. A query's latency is the wall time of its ``search`` call (first
stage and reranking). Prints, per size: the hit rate, the pairs the model scored, p50 / p95 / mean milliseconds
per query, and the mean against no cache; then the hit rate no size can beat (every distinct pair scored once),
and on how many queries each size returned the baseline's top ``--k`` ids.

The model does nearly all the work: at about 20 pairs/s on 2 cores, the defaults (2,000 pairs without a cache,
fewer with each) take 6 minutes; 150 queries about 8.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from xencoder_lab.cache import ScoreCache, zipf_stream
from xencoder_lab.course_models import load_cross_encoder
from xencoder_lab.data import load_beir
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.timing import Stopwatch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=100, help="claims drawn, with repeats")
    parser.add_argument("--zipf", type=float, default=1.1, help="the exponent s: higher, more repeats")
    parser.add_argument("--depth", "--k1", dest="depth", type=int, default=20,
                        help="rerank depth: BM25 candidates reranked per query (--k1 is an alias)")
    parser.add_argument("--k", "--k2", dest="k", type=int, default=10, help="ids returned per query (--k2 is an alias)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 100, 400, 1600], help="pairs kept; 0: none")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=None, help="default: the checkpoint's (256)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [0] + [size for size in dict.fromkeys(args.sizes) if size != 0]  # the baseline always, first

    torch.set_num_threads(args.threads)
    ds = load_beir("scifact", "test")
    stream = zipf_stream(list(ds.queries.values()), args.queries, args.zipf, args.seed)
    model = load_cross_encoder(device="cpu")
    if args.max_length:
        model.max_length = args.max_length
    pipes = {size: Pipeline(ds, "bm25", model, score_cache=ScoreCache(size) if size else None) for size in sizes}
    Pipeline(ds, "bm25", model).search(stream[0], args.depth, args.k)  # warm-up: first calls allocate, pick kernels

    seconds = {size: [] for size in sizes}
    same = dict.fromkeys(sizes, 0)
    for i, query in enumerate(stream):
        order = sizes[i % len(sizes):] + sizes[: i % len(sizes)]
        ids = {}
        for size in order:
            watch = Stopwatch()
            ids[size] = pipes[size].search(query, args.depth, args.k).ids
            seconds[size].append(watch.seconds)
        for size in sizes:
            same[size] += ids[size] == ids[0]
        if (i + 1) % 25 == 0:
            print(f"{i + 1}/{len(stream)} queries", flush=True)

    pairs = len(stream) * args.depth
    ceiling = 1 - len(set(stream)) * args.depth / pairs  # each distinct claim's depth pairs must be scored once
    baseline_ms = statistics.mean(seconds[0]) * 1000
    print(f"\n{len(stream)} queries ({len(set(stream))} distinct claims, Zipf s = {args.zipf}, seed {args.seed}), "
          f"BM25 top {args.depth} reranked to {args.k}, max_length {model.max_length}, {args.threads} threads")
    print(f"{'cache (pairs)':>13} {'hit rate':>9} {'scored':>7} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} "
          f"{'vs none':>8}")
    for size in sizes:
        ms = np.array(seconds[size]) * 1000
        info = pipes[size].score_cache.info() if size else {"hits": 0, "misses": pairs}
        hit_rate = f"{info['hits'] / pairs:9.1%}" if size else f"{'-':>9}"
        print(f"{size or 'none':>13} {hit_rate} {info['misses']:7d} {np.percentile(ms, 50):8.0f} "
              f"{np.percentile(ms, 95):8.0f} {ms.mean():8.0f} {ms.mean() / baseline_ms:8.2f}")
    print(f"hit rate of a cache that keeps every pair: {ceiling:.1%}; same top {args.k} ids as no cache: "
          + ", ".join(f"{size} {same[size]}/{len(stream)}" for size in sizes[1:]))
    return {size: statistics.mean(seconds[size]) * 1000 / baseline_ms for size in sizes}


if __name__ == "__main__":
    main()
