"""SciFact's corpus, and CACM's (the protocol's out-of-domain column), as the course's bi-encoders and its
poly-encoder embed them, made once and shipped beside their checkpoints (notebook 02 checks SciFact's against its
own encoding, 03 against the checkpoint; 04-09 use them).

Embedding SciFact's 5,183 abstracts takes about 4 minutes per model on a 2-core CPU (CACM's 3,204 short ones
about half a minute), and notebooks 03-09 need two models' embeddings: the base model's (the zero-shot
bi-encoder, and the frozen document tower of the query tower and of notebook 06's distilled bi-encoder) and the
fine-tuned bi-encoder's; notebooks 07-09 also the poly-encoder's (its own LoRA-tuned document tower). Notebook 02
shows the encoding itself; after it, a learner who opens any later notebook on a fresh machine should not wait 8
minutes or more for a table. The embeddings are the same for every learner (same weights, same texts), so the
course makes them once, with ``bi_encoder.encode_corpus``:

    python -m xencoder_lab.corpus_embeddings            # writes data/checkpoints/bi-encoder/corpus_embeddings.npz
    python -m xencoder_lab.corpus_embeddings --model poly-encoder   # ... data/checkpoints/poly-encoder/...
    python -m xencoder_lab.corpus_embeddings --check    # re-embeds a random sample and compares
    python -m xencoder_lab.corpus_embeddings --int8     # the fine-tuned bi-encoder's int8 copy: ...int8.npz

They are stored as computed, in float32 (12 MB a model: SciFact's 7.4, CACM's 4.6). Half that in float16 was tried
and measured: rounding each component to 2^-12 of its size moved the zero-shot nDCG@10 on SciFact test from 0.6497
to 0.6507, enough to change a figure the notebooks print; the file's ``meta`` records the nDCG@10 of the stored
embeddings.

``install(model, ds)`` puts a model's embeddings into the disk cache under the key ``encode_corpus`` reads
(``bi_encoder.corpus_cache_parts``: the document tower's weights, the corpus's ids and texts, the settings), so an
entry can only ever serve the model and corpus it was made from. Notebook 06 measures what int8 costs in quality
by embedding both corpora again with the fine-tuned bi-encoder's int8 copy (``runtime``, which embeds each text
alone, so its vectors are the same whatever they are batched with); those are a file of their own, entries
``fine-tuned, int8`` and ``fine-tuned, int8, cacm``. ``check`` re-embeds a seeded sample; a test runs
it, and the notebooks run it in front of the reader.

A file holds one float32 array (N, D) per document tower and corpus, named ``zero-shot`` and ``fine-tuned``
for SciFact, ``zero-shot, cacm`` and ``fine-tuned, cacm`` for CACM (the poly-encoder's file: ``poly-encoder`` and
``poly-encoder, cacm``), and ``meta`` (JSON: each array's cache parts, the command, the hardware, the seconds, the
quality check on each corpus's test queries).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from . import checkpoints, metrics
from .bi_encoder import CORPUS_CACHE, BiEncoder, corpus_cache_parts, encode_corpus
from .cache import store
from .data import Dataset, document_text, load_beir
from .models import backend_parts
from .poly_encoder import PolyEncoder
from .protocol import OUT_OF_DOMAIN
from .retrieval import run_queries, searcher_for
from .timing import Stopwatch

PATH = checkpoints.CHECKPOINTS / "bi-encoder" / "corpus_embeddings.npz"
COMMAND = "python -m xencoder_lab.corpus_embeddings"
SHIPPED_BESIDE = ("bi-encoder", "poly-encoder")  # the checkpoints a file is shipped beside (``--model``)
INT8_PATH = PATH.with_name("corpus_embeddings.int8.npz")  # the fine-tuned bi-encoder's int8 copy's (``--int8``)


def shipped_path(model: BiEncoder) -> Path:
    """The shipped file that holds ``model``'s kind of embeddings: beside the poly-encoder checkpoint for a
    ``PolyEncoder``, else beside the bi-encoder's (``PATH``; ``INT8_PATH`` for a copy run by ONNX Runtime)."""
    if backend_parts(model):
        return INT8_PATH
    return checkpoints.CHECKPOINTS / ("poly-encoder" if isinstance(model, PolyEncoder) else "bi-encoder") / PATH.name


def make(models: dict[str, BiEncoder], datasets: list[Dataset], show_progress=None,
         cache_root=None, command: str = COMMAND) -> dict[str, np.ndarray]:
    """Embed (through the disk cache) each dataset's corpus with each of ``models`` (name -> model); return the
    file's arrays, named ``name`` for the first dataset and ``name, dataset`` for the others, with the nDCG@10 of
    each array on its dataset's queries in ``meta``."""
    watch = Stopwatch()
    arrays, entries, quality = {}, {}, {}
    for i, test in enumerate(datasets):
        quality[f"ndcg@10 on {test.name} {test.split}"] = scores = {}
        for name, model in models.items():
            entry = name if i == 0 else f"{name}, {test.name}"
            arrays[entry] = encode_corpus(model, test, show_progress=show_progress, cache_root=cache_root)  # (N, D)
            entries[entry] = corpus_cache_parts(model, test)
            searcher = searcher_for(model, test, cache_root)  # reads the vectors just cached
            scores[entry] = metrics.evaluate(run_queries(searcher, test, k=10), test.qrels, ["ndcg@10"])["ndcg@10"]
    meta = {
        "about": f"{' and '.join(ds.name for ds in datasets)}: corpora embedded by {', '.join(models)} "
                 "(see xencoder_lab.corpus_embeddings)",
        "command": command,
        "entries": entries,
        **quality,
        "seconds": round(watch.seconds),
        "seconds_note": "wall time of this run; embeddings already in the disk cache were read back, not computed",
        "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return {**arrays, "meta": np.array(json.dumps(meta))}


def save(arrays: dict[str, np.ndarray], path: str | Path = PATH, overwrite: bool = False) -> Path:
    """Write the file (compressed), refusing to replace an existing one unless ``overwrite``."""
    return checkpoints.save_arrays(arrays, path, overwrite)


def load(path: str | Path = PATH) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a corpus-embeddings file."""
    return checkpoints.load_arrays(path, COMMAND)


def _entry(meta: dict, model: BiEncoder, ds: Dataset, path: Path) -> str:
    """The name of the array made by ``model``'s document tower from ``ds``'s corpus, or a clear error."""
    parts = corpus_cache_parts(model, ds)
    for name, made_from in meta["entries"].items():
        if made_from == parts:
            return name
    raise ValueError(
        f"{path} holds no embeddings of this corpus ({ds.name}) by this document tower with these settings "
        f"(it holds {', '.join(meta['entries'])}): let encode_corpus compute them (skip install), or make the file "
        f"again for your models with `{COMMAND} --overwrite`."
    )


def install(model: BiEncoder, ds: Dataset, path: str | Path | None = None, cache_root=None, verify: int = 0,
            tolerance: float = 1e-3) -> dict:
    """Put the shipped embeddings of ``ds``'s corpus by ``model``'s document tower into the disk cache, where
    ``encode_corpus`` finds them (raises if the file holds none for this model and corpus). With ``verify``,
    ``check`` re-embeds that many documents first, and embeddings this machine does not reproduce within
    ``tolerance`` are left out (an int8 copy's, on a CPU whose int8 kernels round otherwise).

    Args:
        model: the bi-encoder whose document tower made the embeddings.
        ds: the dataset whose corpus they embed.
        path: the shipped ``.npz`` (default: ``shipped_path(model)``, beside the model's checkpoint).
        cache_root: the disk cache's folder (default: ``XLAB_CACHE``).
        verify: documents to re-embed before installing; 0: none.
        tolerance: the largest difference accepted when verifying.

    Returns:
        ``{"embeddings": entry name, "documents": N, "new to the cache": bool}``, and when verifying
        ``"largest difference"`` (and ``"left out"``, why, when it is not below ``tolerance``).

    Raises:
        ValueError: the file holds no embeddings of this model and corpus.
    """
    path = Path(path or shipped_path(model))
    meta, arrays = load(path)
    name = _entry(meta, model, ds, path)
    found = {}
    if verify:
        difference = check(model, ds, verify, path=path)["largest difference"]
        found["largest difference"] = difference
        if not difference < tolerance:
            return {"embeddings": name, "documents": len(arrays[name]), "new to the cache": False, **found,
                    "left out": f"this machine embeds otherwise (tolerance {tolerance}): the corpus is embedded"}
    new = store(CORPUS_CACHE, corpus_cache_parts(model, ds), arrays[name], root=cache_root)
    return {"embeddings": name, "documents": len(arrays[name]), "new to the cache": new, **found}


def check(model: BiEncoder, ds: Dataset, n: int = 16, seed: int = 0, path: str | Path | None = None) -> dict:
    """Re-embed ``n`` seeded random documents of ``ds`` with ``model``; return the largest difference from the
    stored embeddings (a few 1e-7: the same float32 arithmetic, batched differently; for an int8 copy 0 on the
    machine that made the file, more where another CPU's int8 kernels round otherwise).

    Args:
        model: the bi-encoder the file was made with.
        ds: the dataset whose corpus the file embeds.
        n: documents to re-embed.
        seed: seed of their choice.
        path: the shipped ``.npz`` (default: ``shipped_path(model)``, beside the model's checkpoint).

    Returns:
        ``{"documents checked": n, "largest difference": float}``.

    Raises:
        ValueError: the file holds no embeddings of this model and corpus.
    """
    path = Path(path or shipped_path(model))
    meta, arrays = load(path)
    stored = arrays[_entry(meta, model, ds, path)]  # (N, D)
    ids = list(ds.corpus)
    rows = np.random.default_rng(seed).choice(len(ids), size=min(n, len(ids)), replace=False)
    fresh = model.encode_documents([document_text(ds.corpus[ids[r]]) for r in rows], show_progress=False)  # (n, D)
    return {"documents checked": len(rows), "largest difference": float(np.abs(fresh - stored[rows]).max())}


def main(argv: list[str] | None = None) -> None:
    from .course_models import load_bi_encoder, load_poly_encoder  # the course checkpoints
    from .runtime import accelerate

    args = checkpoints.artifact_arguments(argv, "Embed SciFact's and CACM's corpora with the course bi-encoders "
                                          "(or its poly-encoder).", PATH, "re-embed a random sample of the file and "
                                          "compare", models=SHIPPED_BESIDE,
                                          others=[("int8", INT8_PATH, "embed with the fine-tuned bi-encoder's int8 "
                                                                      "copy instead")])
    if args.int8 and args.model != "bi-encoder":
        raise SystemExit("--int8 embeds with the fine-tuned bi-encoder's int8 copy: leave --model out.")
    if args.int8:
        models = {"fine-tuned, int8": accelerate(load_bi_encoder(), "int8")}
    elif args.model == "poly-encoder":
        models = {"poly-encoder": load_poly_encoder()}
    else:  # the query towers' and the distilled bi-encoder's documents: zero-shot
        models = {"zero-shot": BiEncoder(), "fine-tuned": load_bi_encoder()}
    datasets = [load_beir("scifact", "test"), load_beir(OUT_OF_DOMAIN, "test")]
    if args.check:
        for test in datasets:
            for model in models.values():
                print(test.name, check(model, test, path=args.out))
        return
    arrays = make(models, datasets, show_progress=True,
                  command=COMMAND + {"poly-encoder": " --model poly-encoder"}.get(args.model, "")
                  + (" --int8" if args.int8 else ""))
    save(arrays, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items() if k != 'meta')}")


if __name__ == "__main__":
    main()
