"""Pairs per second: our cross-encoder against sentence-transformers' CrossEncoder, same weights, same pairs.

    python benchmarks/rerank.py                      # 10 SciFact claims x 30 abstracts = 300 pairs, 3 rounds
    python benchmarks/rerank.py --queries 20 --docs 50 --rounds 5
    python benchmarks/rerank.py --onnx               # also ours in ONNX Runtime, float32 and int8 (notebook 06)
    python benchmarks/rerank.py --model small-cross-encoder --docs 100 --onnx   # the student, 100 pairs a claim

Ours is a course checkpoint (``course_models.load_cross_encoder``, ``--model``) scored with ``CrossEncoder.score``.
Theirs is ``sentence_transformers.CrossEncoder.predict`` on the same weights: the checkpoint exported to a temporary
folder with ``export.to_sentence_transformers`` and loaded from it, i.e. sentence-transformers' own
``Transformer`` module (a plain ``BertModel`` with the checkpoint's encoder weights) followed by
``export.HeadAndCosine``, a small module holding the checkpoint's head and scale. No stock sentence-transformers
module computes our score: its default cross-encoder is ``BertForSequenceClassification``, whose classifier
reads the *pooler* (``tanh(W h_[CLS] + b)``) and has no cosine term, while ours is

    logit = w . h_[CLS] + b + scale * cos(mean of the query's token vectors, mean of the document's)

so the module re-implements that formula in a few lines of plain torch (it calls none of our model code).
What sentence-transformers runs is everything else: its tokenization (per batch, its default truncation,
longest part first, as ours, at the checkpoint's ``max_length``), its batching (sorted by characters, where
ours sorts by tokens), its forward and its output handling (``activation_fn`` is the identity, so both give
logits, not sigmoids).

Each claim is paired with its own random sample of abstracts (seeded), as a reranker sees a different
candidate list per query. Both use the same batch size and number of threads. Rounds alternate which one
goes first, in one process, so a change in the machine's load hits both alike. Peak memory is the highest
resident memory above the level before each run, sampled every 10 ms. The logits must agree (max absolute
difference <= 1e-3). Prints pairs/s for each, the ratio ours / theirs (median over rounds), the peak memory,
and the tokens each pushes through the encoder, padding included (the one difference in work between them).
About 8 in 10 SciFact pairs fill all 256 tokens, so sorting by tokens rather than by characters saves only 1 to 3
per cent of the tokens here (1.2 at the defaults): the ratio cannot be expected to rise much above 1.0 on this data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import CrossEncoder as STCrossEncoder

from xencoder_lab.course_models import load_cross_encoder
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.export import to_sentence_transformers
from xencoder_lab.runtime import PRECISIONS, accelerate

sys.path.insert(0, str(Path(__file__).resolve().parent))  # alternate.py, beside this file
from alternate import alternate  # noqa: E402

TOLERANCE = 1e-3  # logits are O(10); float32 noise from different padding is O(1e-5)


def padded_tokens(lengths, order, batch_size: int) -> int:
    """Tokens the encoder reads when rows are batched in ``order``, each batch padded to its longest row."""
    batches = [lengths[order[i : i + batch_size]] for i in range(0, len(order), batch_size)]
    return int(sum(b.max() * len(b) for b in batches))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=10, help="first N SciFact test claims")
    parser.add_argument("--docs", type=int, default=30, help="abstracts per claim, sampled at random")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=None, help="default: the checkpoint's")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--onnx", action="store_true", help="also ours in ONNX Runtime, float32 and int8 (notebook 06)")
    parser.add_argument("--model", choices=("cross-encoder", "small-cross-encoder"), default="cross-encoder")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    ds = load_beir("scifact", "test")
    texts = [document_text(doc) for doc in ds.corpus.values()]
    rng = np.random.default_rng(args.seed)
    pairs = [
        (query, texts[i])
        for query in list(ds.queries.values())[: args.queries]
        for i in rng.choice(len(texts), size=args.docs, replace=False)
    ]
    ours = load_cross_encoder(args.model, device="cpu")
    if args.max_length:
        ours.max_length = args.max_length
    features = ours.features([q for q, _ in pairs], [d for _, d in pairs])
    lengths = np.array([len(ids) for ids in features["input_ids"]])  # tokens per pair, as both tokenize
    tokens = {
        "xencoder_lab": padded_tokens(lengths, np.argsort(-lengths, kind="stable"), args.batch_size),
        # predict sorts by characters (query + document), longest first
        "sentence-transformers": padded_tokens(
            lengths, np.argsort([-(len(q) + len(d)) for q, d in pairs]), args.batch_size
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:  # kept until the runs end: the loaded weights may be mapped from it
        folder = to_sentence_transformers(ours, Path(tmp) / "cross-encoder")
        # trust_remote_code: the folder names export.HeadAndCosine, a module from outside sentence-transformers
        theirs = STCrossEncoder(str(folder), device="cpu", trust_remote_code=True)
        systems = {
            "xencoder_lab": lambda p: ours.score(
                [q for q, _ in p], [d for _, d in p], batch_size=args.batch_size, show_progress=False
            ),
            "sentence-transformers": lambda p: theirs.predict(p, batch_size=args.batch_size, show_progress_bar=False),
        }
        if args.onnx:
            for precision in PRECISIONS:
                fast = accelerate(ours, precision)
                systems[f"onnx {precision}"] = lambda p, m=fast: m.score(
                    [q for q, _ in p], [d for _, d in p], batch_size=args.batch_size, show_progress=False)
                tokens[f"onnx {precision}"] = tokens["xencoder_lab"]
        rates, memory, logits = alternate(systems, pairs, args.rounds, "pairs")

    diff = float(np.abs(logits["xencoder_lab"] - logits["sentence-transformers"]).max())
    assert diff <= TOLERANCE, f"the logits differ (max abs difference {diff:.2e}): the comparison is void"
    ratio = statistics.median(a / b for a, b in zip(rates["xencoder_lab"], rates["sentence-transformers"]))
    print(f"\n{args.model}: {len(pairs)} pairs ({args.queries} claims x {args.docs} abstracts), "
          f"max_length {ours.max_length}, "
          f"batch {args.batch_size}, {args.threads} threads, {args.rounds} rounds; "
          f"max abs difference between the two logits {diff:.2e}")
    for name in systems:
        print(f"{name:22} median {statistics.median(rates[name]):7.1f} pairs/s, peak +{max(memory[name]):.0f} MB, "
              f"{tokens[name]:,} tokens with padding ({lengths.sum():,} without)")
    print(f"ratio xencoder_lab / sentence-transformers: {ratio:.3f} (median of per-round ratios)")
    for name in systems:
        if name.startswith("onnx"):
            faster = statistics.median(a / b for a, b in zip(rates[name], rates["sentence-transformers"]))
            moved = np.abs(logits[name] - logits["sentence-transformers"])
            print(f"ratio {name} / sentence-transformers: {faster:.3f}; logits moved by mean {moved.mean():.3f}, "
                  f"max {moved.max():.3f}")
    return ratio


if __name__ == "__main__":
    main()
