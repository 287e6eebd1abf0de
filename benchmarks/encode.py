"""Documents per second: our bi-encoder against sentence-transformers, same model, same machine, same run.

    python benchmarks/encode.py                      # the SciFact corpus (5,183 abstracts), 3 rounds
    python benchmarks/encode.py --docs 1000 --rounds 5
    python benchmarks/encode.py --docs 1000 --onnx   # also ours in ONNX Runtime, float32 and int8 (notebook 06)

Both encode the same texts with all-MiniLM-L6-v2, mean pooling, normalised, at the same maximum length,
batch size and number of threads. Rounds alternate which one goes first, in one process, so a change in the
machine's load hits both alike. Peak memory is the highest resident memory above the level before each run,
sampled every 10 ms. The embeddings must agree (cosine >= 0.9999). Prints docs/s for each, the ratio
ours / theirs (median over rounds) and the peak memory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from xencoder_lab.bi_encoder import BiEncoder
from xencoder_lab.data import document_text, load_beir
from xencoder_lab.models import resolve_model
from xencoder_lab.runtime import PRECISIONS, accelerate

sys.path.insert(0, str(Path(__file__).resolve().parent))  # alternate.py, beside this file
from alternate import alternate  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=None, help="first N abstracts (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--onnx", action="store_true", help="also ours in ONNX Runtime, float32 and int8 (notebook 06)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    corpus = load_beir("scifact", "test").corpus
    texts = [document_text(doc) for doc in corpus.values()][: args.docs]
    ours = BiEncoder(max_length=args.max_length, device="cpu")
    theirs = SentenceTransformer(resolve_model(), device="cpu")
    theirs.max_seq_length = args.max_length
    systems = {
        "xencoder_lab": lambda t: ours.encode_documents(t, batch_size=args.batch_size, show_progress=False),
        "sentence-transformers": lambda t: theirs.encode(
            t, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
        ),
    }
    if args.onnx:
        for precision in PRECISIONS:
            fast = accelerate(ours, precision)
            systems[f"onnx {precision}"] = (
                lambda t, m=fast: m.encode_documents(t, batch_size=args.batch_size, show_progress=False))
    rates, memory, embeddings = alternate(systems, texts, args.rounds, "docs")

    cosine = (embeddings["xencoder_lab"] * embeddings["sentence-transformers"]).sum(1).min()
    assert cosine >= 0.9999, f"the embeddings differ (min cosine {cosine:.5f}): the comparison is void"
    ratio = statistics.median(a / b for a, b in zip(rates["xencoder_lab"], rates["sentence-transformers"]))
    print(f"\n{len(texts)} documents, max_length {args.max_length}, batch {args.batch_size}, "
          f"{args.threads} threads, {args.rounds} rounds; min cosine between the two {cosine:.6f}")
    for name in systems:
        print(f"{name:22} median {statistics.median(rates[name]):7.1f} docs/s, peak +{max(memory[name]):.0f} MB")
    print(f"ratio xencoder_lab / sentence-transformers: {ratio:.3f} (median of per-round ratios)")
    for name in systems:
        if name.startswith("onnx"):
            faster = statistics.median(a / b for a, b in zip(rates[name], rates["sentence-transformers"]))
            agree = (embeddings[name] * embeddings["sentence-transformers"]).sum(1)
            print(f"ratio {name} / sentence-transformers: {faster:.3f}; cosine to its fp32 embeddings: "
                  f"min {agree.min():.4f}, mean {agree.mean():.4f}")
    return ratio


if __name__ == "__main__":
    main()
