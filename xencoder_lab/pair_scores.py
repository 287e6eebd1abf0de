"""The course cross-encoder's logits for every pair notebook 05 reranks, made once and shipped beside it.

Notebook 05 reranks the top 100 of two first stages (BM25 and the fine-tuned bi-encoder) for the 300 SciFact
test claims, the 80 validation claims the recipes held out and CACM's 52 queries: about 74,000 (claim, abstract)
pairs, most of an hour on a 2-core CPU before the first table. Notebook 06 asks the cross-encoder about the hard
negatives it mines for SciFact's training claims (from the fine-tuned bi-encoder's top 20) and their judged
abstracts: about 17,000 pairs more, in a file of their own. Notebooks 06 and 09 rerank the bi-encoder's lists in
int8 too (``runtime``): each int8 copy's logits, at the depth the notebooks read, are a file beside its checkpoint.
The pairs are the same for every learner and so are their logits (same weights, same texts), so the course scores
them once, with the code the notebooks use:

    python -m xencoder_lab.pair_scores            # writes data/checkpoints/cross-encoder/pairs.npz
    python -m xencoder_lab.pair_scores --check    # re-scores a random sample and compares
    python -m xencoder_lab.pair_scores --model small-cross-encoder    # the same pairs, notebook 06's student
    python -m xencoder_lab.pair_scores --mining   # writes data/checkpoints/cross-encoder/mining.npz
    python -m xencoder_lab.pair_scores --int8 --model small-cross-encoder   # its int8 copy's: pairs.int8.npz

``install(model)`` copies them into the disk cache under the keys ``cross_encoder.score_candidates`` reads,
after checking they belong to ``model`` (its weights' fingerprint); from then on ``score_candidates`` and
``Pipeline.run`` only score pairs the file does not hold. Nothing is taken on trust: ``check`` re-scores a
seeded sample, a test runs it, and notebook 05 runs it in front of the reader.

The file holds one row per pair: ``dataset``, ``split``, ``query_id``, ``doc_id`` (strings), ``logit`` and its
two terms ``head`` and ``warm`` (float32; an int8 copy's file, and one made before the terms were kept, hold
``logit`` only), plus ``meta`` (JSON: the model's fingerprint and, for an int8 copy, its ``backend``,
``max_length``, ``cosine_weight``, depth, command, hardware, seconds).
"""

from __future__ import annotations

import datetime
import functools
import json
from pathlib import Path

import numpy as np

from . import checkpoints
from .bm25 import BM25
from .cache import store_rows
from .cross_encoder import PAIR_CACHE, CrossEncoder, pair_cache_parts, pair_key
from .data import Dataset, document_text, load_beir, split_validation
from .models import backend_parts, model_fingerprint
from .protocol import OUT_OF_DOMAIN
from .retrieval import dense_run, run_queries
from .timing import Stopwatch

PATH = checkpoints.CHECKPOINTS / "cross-encoder" / "pairs.npz"
MODELS = ("cross-encoder", "small-cross-encoder")  # the course checkpoints a file is shipped for, beside each
DEPTH = 100  # each first stage's top DEPTH for every query
RERANKED = (("scifact", "test"), ("scifact", "train-validation"), ("cacm", "test"))  # notebook 05's query sets
MINED = ("scifact", "train")  # notebook 06's mining set: judged pairs and the bi-encoder's top MINING_DEPTH
MINING_DEPTH = 20
MINING_PATH = PATH.with_name("mining.npz")
INT8_PATH = PATH.with_name("pairs.int8.npz")  # an int8 copy's logits, beside each checkpoint (``--int8``)
INT8_SETS = (("scifact", "test"), ("cacm", "test"))  # the query sets notebooks 06 and 09 rerank in int8 ...
INT8_DEPTHS = {"cross-encoder": 10, "small-cross-encoder": 100}  # ... and how deep, by checkpoint


@functools.lru_cache(maxsize=1)
def course_datasets(validation_queries: int = 80, seed: int = 0) -> dict[tuple[str, str], Dataset]:
    """The query sets of the files, by ``(dataset, split)``: those notebook 05 reranks (``RERANKED``: SciFact test,
    the recipes' validation claims, ``split_validation(train, 80, seed=0)`` with split name ``train-validation``,
    and CACM) and SciFact train, where notebook 06 mines hard negatives (``MINED``). Loaded once per process
    (``install`` and ``check`` both read them); treat them as read-only."""
    train = load_beir("scifact", "train")
    validation = split_validation(train, n=validation_queries, seed=seed)[1]
    sets = [load_beir("scifact", "test"), validation, load_beir(OUT_OF_DOMAIN, "test"), train]
    return {(ds.name, ds.split): ds for ds in sets}


def rerank_pairs(ds: Dataset, bi_encoder, depth: int = DEPTH) -> list[tuple[str, str]]:
    """``(query id, doc id)`` of BM25's and ``bi_encoder``'s top ``depth`` for every query of ``ds``, sorted."""
    bm25 = BM25([document_text(doc) for doc in ds.corpus.values()], list(ds.corpus))
    runs = [run_queries(bm25, ds, depth), dense_run(bi_encoder, ds, depth)]
    return sorted({(q, d) for run in runs for q in run for d in run[q][:depth]})


def first_stage_pairs(ds: Dataset, bi_encoder, depth: int) -> list[tuple[str, str]]:
    """``(query id, doc id)`` of ``bi_encoder``'s top ``depth`` for every query of ``ds``, sorted."""
    run = dense_run(bi_encoder, ds, min(depth, len(ds.corpus)))
    return sorted((q, d) for q in run for d in run[q][:depth])


def mining_pairs(ds: Dataset, bi_encoder, depth: int = MINING_DEPTH) -> list[tuple[str, str]]:
    """``(query id, doc id)`` of every judged pair of ``ds`` and ``bi_encoder``'s top ``depth`` for each of its
    queries, sorted: the positives and the candidates hard-negative mining picks from (``negatives``), so the
    cross-encoder's opinion of any pick is in the file (a pick that falls back to a random abstract is not)."""
    judged = {(q, d) for q, docs in ds.qrels.items() for d, grade in docs.items() if grade > 0}
    run = dense_run(bi_encoder, ds, min(depth, len(ds.corpus)))
    return sorted(judged | {(q, d) for q in run for d in run[q][:depth]})


def make(
    model: CrossEncoder,
    bi_encoder,
    datasets: dict | None = None,
    depth: int = DEPTH,
    show_progress=None,
) -> dict[str, np.ndarray]:
    """Score the pairs of every query set of ``datasets`` (default: ``course_datasets()``'s ``RERANKED`` sets):
    ``rerank_pairs`` at ``depth``, or ``mining_pairs`` for the ``MINED`` set, keeping each logit's two terms
    (``CrossEncoder.parts``); return the file's arrays:

        logit = head + c * warm        head: w . h_[CLS] + b;  warm: a * cos(mean_q(h), mean_d(h))

    An int8 copy (``runtime.accelerate``) scores the bi-encoder's top ``depth`` only (``first_stage_pairs``: the
    list notebooks 06 and 09 rerank in int8), and its file holds the logits alone, with the backend in ``meta``."""
    watch = Stopwatch()
    datasets = datasets or {key: course_datasets()[key] for key in RERANKED}
    quantized = backend_parts(model)
    rows, logits, both = [], [], []
    for (name, split), ds in datasets.items():
        if (name, split) == MINED:
            pairs = mining_pairs(ds, bi_encoder, MINING_DEPTH)
        else:
            pairs = (first_stage_pairs if quantized else rerank_pairs)(ds, bi_encoder, depth)
        queries, docs = [ds.queries[q] for q, _ in pairs], [document_text(ds.corpus[d]) for _, d in pairs]
        if quantized:  # an ONNX Runtime copy gives the logit, not its terms
            logits.append(model.score(queries, docs, show_progress=show_progress))  # (P,)
        else:
            both.append(model.score_parts(queries, docs, show_progress=show_progress))  # (P, 2)
        rows += [(name, split, q, d) for q, d in pairs]
    reranked = any(key != MINED for key in datasets)
    stage = "the bi-encoder's" if quantized else "BM25's and the bi-encoder's"
    about = " and ".join(what for what, there in (
        (f"{stage} top {depth}", reranked),
        (f"the judged pairs and the bi-encoder's top {MINING_DEPTH} of {MINED[0]} {MINED[1]}", MINED in datasets),
    ) if there)
    flags = (" --mining" if MINED in datasets else "") + (" --int8" if quantized else "")
    meta = {
        "about": (f"{model.backend} logits" if quantized else "cross-encoder logits, with their two terms,")
        + f" for {about} (see xencoder_lab.pair_scores)",
        "command": "python -m xencoder_lab.pair_scores" + flags,
        "model": model_fingerprint(model),
        **({"backend": quantized} if quantized else {}),
        "max_length": model.max_length,
        "cosine_weight": model.cosine_weight,
        **({"depth": depth} if reranked else {}),
        **({"mining depth": MINING_DEPTH} if MINED in datasets else {}),
        "pairs": len(rows),
        "seconds": round(watch.seconds),
        "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    ids = {key: np.array(values, dtype=str) for key, values in zip(("dataset", "split", "query_id", "doc_id"),
                                                                  zip(*rows))}
    if quantized:
        return {**ids, "logit": np.concatenate(logits).astype(np.float32), "meta": np.array(json.dumps(meta))}
    head, warm = np.concatenate(both).astype(np.float32).T
    return {**ids, "logit": head + np.float32(model.cosine_weight) * warm, "head": head, "warm": warm,
            "meta": np.array(json.dumps(meta))}


def save(arrays: dict[str, np.ndarray], path: str | Path = PATH, overwrite: bool = False) -> Path:
    """Write the file (compressed), refusing to replace an existing one unless ``overwrite``."""
    return checkpoints.save_arrays(arrays, path, overwrite)


def load(path: str | Path = PATH) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a pair-score file."""
    return checkpoints.load_arrays(path, "python -m xencoder_lab.pair_scores")


def terms(path: str | Path = PATH, dataset: str = "cacm", split: str = "test",
          term: str = "logit") -> dict[str, dict[str, float]]:
    """One term of a file's logits for one dataset's split, shaped as ``score_candidates`` returns logits:
    ``{query id: {doc id: value}}``. ``term``: ``"logit"``, its ``"head"`` (w . h_[CLS] + b) or ``"warm"`` (the
    cosine term before its weight c: logit = head + c * warm).

    Raises:
        ValueError: the file holds no such term (made before the terms were kept) or no pairs of that split.
    """
    meta, arrays = load(path)
    if term not in arrays or term == "meta":
        raise ValueError(f"{path} holds no {term!r} term (it holds {', '.join(k for k in arrays if k != 'meta')}): "
                         "make it again with `python -m xencoder_lab.pair_scores --overwrite`.")
    rows = np.flatnonzero((arrays["dataset"] == dataset) & (arrays["split"] == split))
    if not len(rows):
        raise ValueError(f"{path} holds no pairs of {dataset} {split}.")
    out: dict[str, dict[str, float]] = {}
    for q, d, v in zip(arrays["query_id"][rows].tolist(), arrays["doc_id"][rows].tolist(), arrays[term][rows].tolist()):
        out.setdefault(q, {})[d] = v
    return out


def _belongs_to(meta: dict, model: CrossEncoder, path: Path) -> None:
    if meta.get("backend", {}) != backend_parts(model):  # an ONNX copy shares the weights' fingerprint, not the logits
        made, runs = (", ".join(parts.values()) or "torch" for parts in (meta.get("backend", {}), backend_parts(model)))
        raise ValueError(
            f"the pair scores in {path} are the logits of a model run in {made}; this one runs in {runs}, whose "
            f"logits differ: install the file made for it (`python -m xencoder_lab.pair_scores --int8` makes an "
            "int8 copy's), or let it score its pairs as you go."
        )
    if meta["model"] != model_fingerprint(model) or meta["max_length"] != model.max_length:
        raise ValueError(
            f"the pair scores in {path} were made by another cross-encoder (or another max_length) than this one: "
            "make them again for this model with `python -m xencoder_lab.pair_scores --overwrite` (and `--model` for "
            "another course checkpoint), or score the "
            "pairs as you go (skip install)."
        )


def _texts(arrays: dict[str, np.ndarray], rows, datasets: dict) -> list[tuple[str, str]]:
    """(query text, document text) of the given rows, from the datasets they name."""
    pairs = []
    for i in rows:
        ds = datasets[str(arrays["dataset"][i]), str(arrays["split"][i])]
        pairs.append((ds.queries[str(arrays["query_id"][i])], document_text(ds.corpus[str(arrays["doc_id"][i])])))
    return pairs


def install(model: CrossEncoder, path: str | Path = PATH, datasets: dict | None = None, cache_root=None,
            verify: int = 0, tolerance: float = 1e-3) -> dict:
    """Copy the shipped logits into the disk cache for ``model`` (raises if they are another model's); return
    how many pairs the file holds and how many were new to the cache. ``datasets``: those the file was made
    from (default ``course_datasets()``). With ``verify``, ``check`` re-scores that many pairs first, and a file
    this machine does not reproduce within ``tolerance`` is left out (an int8 copy's, on a CPU whose int8
    kernels round otherwise): the cache then fills as the pairs are scored.

    Args:
        model: the cross-encoder the file was made with.
        path: the shipped ``.npz`` (default: beside the ``cross-encoder`` checkpoint).
        datasets: ``{(dataset, split): Dataset}`` the pairs' texts come from.
        cache_root: the disk cache's folder (default: ``XLAB_CACHE``).
        verify: pairs to re-score before installing; 0: none.
        tolerance: the largest difference of logits accepted when verifying.

    Returns:
        ``{"pairs": int, "new to the cache": int}``, and when verifying ``"largest difference"`` (and
        ``"left out"``, why, when it is not below ``tolerance``).

    Raises:
        ValueError: the file was made by another model or ``max_length``.
    """
    path = Path(path)
    meta, arrays = load(path)
    _belongs_to(meta, model, path)
    datasets = datasets or course_datasets()
    found = {}
    if verify:
        difference = check(model, verify, path=path, datasets=datasets)["largest difference"]
        found["largest difference"] = difference
        if not difference < tolerance:
            return {"pairs": len(arrays["logit"]), "new to the cache": 0, **found,
                    "left out": f"this machine scores otherwise (tolerance {tolerance}): pairs are scored as you go"}
    pairs = _texts(arrays, range(len(arrays["logit"])), datasets)
    keys = [pair_key(q, d) for q, d in pairs]
    new = store_rows(PAIR_CACHE, pair_cache_parts(model), keys, arrays["logit"].tolist(), root=cache_root)
    return {"pairs": len(keys), "new to the cache": new, **found}


def check(
    model: CrossEncoder, n: int = 16, seed: int = 0, path: str | Path = PATH, datasets: dict | None = None
) -> dict:
    """Re-score ``n`` seeded random pairs of the file with ``model``; return the largest difference of logits.

    The file is trusted only as far as this number is small: a few 1e-5 for the PyTorch model (the same float32
    arithmetic, batched differently); 0 for an int8 copy on the machine that made the file, which scores each pair
    alone (``runtime``), and more where another CPU's int8 kernels round otherwise.

    Args:
        model: the cross-encoder the file was made with.
        n: pairs to re-score.
        seed: seed of their choice.
        path: the shipped ``.npz`` (default: beside the ``cross-encoder`` checkpoint).
        datasets: ``{(dataset, split): Dataset}`` the pairs' texts come from (default ``course_datasets()``).

    Returns:
        ``{"pairs checked": n, "largest difference": float, "logit range": [min, max]}``.

    Raises:
        ValueError: the file was made by another model or ``max_length``.
    """
    path = Path(path)
    meta, arrays = load(path)
    _belongs_to(meta, model, path)
    rows = np.random.default_rng(seed).choice(len(arrays["logit"]), size=min(n, len(arrays["logit"])), replace=False)
    pairs = _texts(arrays, rows, datasets or course_datasets())
    fresh = model.score([q for q, _ in pairs], [d for _, d in pairs], show_progress=False)  # (n,)
    return {"pairs checked": len(rows), "largest difference": float(np.abs(fresh - arrays["logit"][rows]).max()),
            "logit range": [round(float(arrays["logit"].min()), 1), round(float(arrays["logit"].max()), 1)]}


def main(argv: list[str] | None = None) -> None:
    from .course_models import load_bi_encoder, load_cross_encoder  # the course checkpoints
    from .runtime import accelerate

    args = checkpoints.artifact_arguments(argv, "Score the pairs notebook 05 reranks with the course cross-encoder.",
                                          PATH, "re-score a random sample of the file and compare", MODELS,
                                          [("mining", MINING_PATH, "score notebook 06's mining pairs instead"),
                                           ("int8", INT8_PATH, "score the bi-encoder's top pairs with the model's "
                                                               "int8 copy instead")])
    model = load_cross_encoder(args.model)
    if args.int8:
        model = accelerate(model, "int8")
    if args.check:
        print(check(model, path=args.out))
        return
    if args.mining:
        datasets, depth = {MINED: course_datasets()[MINED]}, DEPTH
    elif args.int8:
        datasets, depth = {key: course_datasets()[key] for key in INT8_SETS}, INT8_DEPTHS[args.model]
    else:
        datasets, depth = None, DEPTH
    arrays = make(model, load_bi_encoder(), datasets, depth, show_progress=True)
    meta = json.loads(str(arrays["meta"]))
    if args.model != MODELS[0]:
        meta["command"] += f" --model {args.model}"
    arrays["meta"] = np.array(json.dumps(meta))
    save(arrays, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {len(arrays['logit'])} pairs")


if __name__ == "__main__":
    main()
