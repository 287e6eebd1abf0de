"""Fusion functions for a hybrid first stage: min-max, z-score and reciprocal rank, at several weights, on the
protocol's columns, and what each does when one of its two lists is weak (``xencoder_lab.hybrid``).

    python benchmarks/fusion.py           # SciFact validation claims and test (all / unseen), CACM: ~10 min, 2 cores
    python benchmarks/fusion.py --toy     # the toy set: seconds (the smoke test)

Columns: ``val-doc``, the validation claims carved from train by document (``protocol``); ``val-32``, the
bi-encoder recipe's held-out claims whose answers no training claim cites (the fine-tuned bi-encoder never saw
them; most of ``val-doc`` it trained on); SciFact test ``all`` and ``unseen``; ``CACM``. Every hybrid fuses BM25
(b is its weight) with the zero-shot or the fine-tuned bi-encoder over each list's top 100, ranked by
``Pipeline.run`` and scored by nDCG@10 (``metrics.evaluate``). Weak parts: BM25 reading only the first three
words of each query, and pure noise (random documents with random scores, seeded by the query) in either slot.
"""

from __future__ import annotations

import argparse
import zlib

import numpy as np

from xencoder_lab import course_models, metrics, protocol
from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.bm25 import BM25
from xencoder_lab.data import TOY_PATH, document_text, load_beir, split_validation
from xencoder_lab.hybrid import Hybrid
from xencoder_lab.pipeline import FUSIONS, Pipeline
from xencoder_lab.retrieval import searcher_for


class FirstWords:
    """A first stage that reads only the first ``n`` words of each query: a deliberately weak BM25."""

    def __init__(self, stage, n: int = 3):
        self.stage, self.n = stage, n

    def __len__(self) -> int:
        return len(self.stage)

    def search(self, queries, k: int = 100):
        return self.stage.search([" ".join(q.split()[: self.n]) for q in queries], k=k)


class Noise:
    """Pure noise: ``k`` random documents with random scores, seeded by the query (the same answer each time)."""

    def __init__(self, ids):
        self.ids = list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries, k: int = 100):
        ids, scores = [], np.zeros((len(queries), k), dtype=np.float32)  # (Q, k)
        for row, query in enumerate(queries):
            rng = np.random.default_rng(zlib.crc32(query.encode()))
            ids.append([self.ids[i] for i in rng.choice(len(self.ids), size=k, replace=False)])
            scores[row] = np.sort(rng.random(k))[::-1]
        return ids, scores


def columns(toy: bool) -> dict:
    """The query sets measured: the toy set alone, or SciFact's validation and test columns and CACM."""
    if toy:
        return {"toy": load_beir("toy", path=TOY_PATH)}
    train, test = load_beir("scifact", "train"), load_beir("scifact", "test")
    kept, held = split_validation(train, n=80, seed=0)  # the bi-encoder recipe's held-out claims
    return {"val-doc": protocol.split_validation_by_document(train, 80, seed=0)[1],
            "val-32": protocol.split_seen(held, kept)[1], **protocol.columns(test, train)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--toy", action="store_true", help="the toy set only (seconds)")
    parser.add_argument("--weights", default="0.2,0.3,0.4,0.5,0.6,0.7", help="BM25's weights b, comma-separated")
    parser.add_argument("--depth", type=int, default=100, help="each list's top depth")
    args = parser.parse_args(argv)
    weights = [float(b) for b in args.weights.split(",")]
    cols = columns(args.toy)
    depth = min([args.depth] + [len(ds.corpus) for ds in cols.values()])
    models = {"zero-shot": BiEncoder(max_length=64 if args.toy else 256)}
    if not args.toy:
        models["fine-tuned"] = course_models.load("bi-encoder")
    stages = {}  # one set of first stages per corpus
    for ds in cols.values():
        if ds.name not in stages:
            texts = {doc_id: document_text(doc) for doc_id, doc in ds.corpus.items()}
            bm25 = BM25(list(texts.values()), list(texts))
            stages[ds.name] = {"bm25": bm25, "bm25, 3 words": FirstWords(bm25), "noise": Noise(texts),
                               **{name: searcher_for(model, ds) for name, model in models.items()}}
    rows = {}

    def add(name, make):
        rows[name] = {c: metrics.evaluate(Pipeline(ds, make(stages[ds.name])).run(depth=depth, k=depth), ds.qrels,
                                          ["ndcg@10"])["ndcg@10"] for c, ds in cols.items()}
        print(f"{name:44}" + "".join(f"{rows[name][c]:9.3f}" for c in cols), flush=True)

    print(f"{'nDCG@10':44}" + "".join(f"{c[:8]:>9}" for c in cols))
    for single in ("bm25", "bm25, 3 words", *models):
        add(single, lambda s, single=single: s[single])
    pairs = [(sparse, dense) for sparse in ("bm25", "bm25, 3 words", "noise") for dense in models]
    for sparse, dense in pairs + [("bm25", "noise")]:
        for how in FUSIONS:
            for b in weights:
                add(f"{sparse} + {dense}, {how}, b={b}",
                    lambda s, sparse=sparse, dense=dense, how=how, b=b: Hybrid(s[sparse], s[dense], b, depth, how))
    return rows


if __name__ == "__main__":
    main()
