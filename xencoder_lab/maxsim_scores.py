"""ColBERT's exact MaxSim score of every abstract for each test query, made once and shipped beside its checkpoint.

Exact MaxSim needs every abstract's token vectors: about 5 minutes of encoding on a 2-core CPU for SciFact and
CACM, and about 300 MB for SciFact alone, too large to ship. Notebook 08 encodes them, since that is its lesson;
notebook 09 only ranks the test queries with them and times a search. The scores are the same for every learner
(same weights, same texts), so the course computes them once, with ``ColbertIndex.exhaustive``, the code of the
exact search:

    python -m xencoder_lab.maxsim_scores            # writes data/checkpoints/colbert/maxsim_scores.npz
    python -m xencoder_lab.maxsim_scores --check    # re-encodes a random sample of abstracts and compares

``ScoreTable(model, ds)`` is a first stage (``search(texts, k) -> ids, scores``, as ``ColbertIndex``) that
answers the file's queries from it, after checking the file belongs to ``model`` and to ``ds``'s queries and
corpus; ``pipeline.Pipeline`` takes it like any searcher. It answers only the queries it holds, and costs a row
lookup: time a search with a ``ColbertIndex`` (``colbert.same_shape`` gives one without encoding the corpus).

Each query set holds one (Q, N) float32 array, named ``"<dataset> <split>"``, with its query ids and document
ids (``... queries``, ``... documents``), and ``meta`` (JSON: the model's fingerprint, its lengths, each set's
digest of query and document texts, the command, the hardware, the seconds). float32, not float16: a score is a
sum of 32 cosines, and 16 bits keep about 3 significant digits, enough to swap near ties.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import checkpoints
from .colbert import ColBERT, ColbertIndex, maxsim, pad_documents
from .data import Dataset, document_text, load_beir
from .models import model_fingerprint
from .protocol import OUT_OF_DOMAIN
from .retrieval import top_k
from .timing import Stopwatch

PATH = checkpoints.CHECKPOINTS / "colbert" / "maxsim_scores.npz"
COMMAND = "python -m xencoder_lab.maxsim_scores"


def course_datasets() -> list[Dataset]:
    """The query sets of the file: SciFact test (its unseen-answer claims are among them) and CACM."""
    return [load_beir("scifact", "test"), load_beir(OUT_OF_DOMAIN, "test")]


def _key(ds: Dataset) -> str:
    return f"{ds.name} {ds.split}"


def _digest(ds: Dataset) -> str:
    """The query and document ids and texts a table was made from."""
    texts = [list(ds.queries.items()), [(d, document_text(doc)) for d, doc in ds.corpus.items()]]
    return hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]


def _model(model: ColBERT) -> dict:
    return {"model": model_fingerprint(model), "max_length": model.max_length, "query_length": model.query_length}


def make(model: ColBERT, datasets: Sequence[Dataset] | None = None) -> dict[str, np.ndarray]:
    """Every document's exact MaxSim score for every query of each dataset (default ``course_datasets()``),
    ``ColbertIndex(model, ds).exhaustive`` on the encoded queries, 64 queries at a time; return the file's arrays."""
    watch = Stopwatch()
    arrays, sets = {}, {}
    for ds in datasets or course_datasets():
        index = ColbertIndex(model, ds)  # the token vectors, from the disk cache when notebook 08 filled it
        Q = model.encode_queries(list(ds.queries.values()))  # (Q, Lq, dim)
        key = _key(ds)
        arrays[key] = np.concatenate([index.exhaustive(Q[i: i + 64]) for i in range(0, len(Q), 64)])  # (Q, N)
        arrays[f"{key} queries"] = np.array(list(ds.queries), dtype=str)
        arrays[f"{key} documents"] = np.array(list(ds.corpus), dtype=str)
        sets[key] = _digest(ds)
    meta = {
        "about": "ColBERT's exact MaxSim score of every document for each query (see xencoder_lab.maxsim_scores)",
        "command": COMMAND,
        **_model(model),
        "sets": sets,
        "seconds": round(watch.seconds),
        "hardware": checkpoints.hardware(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return arrays | {"meta": np.array(json.dumps(meta))}


def save(arrays: dict[str, np.ndarray], path: str | Path = PATH, overwrite: bool = False) -> Path:
    """Write the file (compressed), refusing to replace an existing one unless ``overwrite``."""
    return checkpoints.save_arrays(arrays, path, overwrite)


def load(path: str | Path = PATH) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a MaxSim score file."""
    return checkpoints.load_arrays(path, COMMAND)


def _table(model: ColBERT, ds: Dataset, path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """``(scores (Q, N), query ids, document ids)`` of ``ds`` in the file, after checking they are ``model``'s
    and ``ds``'s."""
    meta, arrays = load(path)
    if {k: meta[k] for k in _model(model)} != _model(model):
        raise ValueError(f"the MaxSim scores in {path} were made by another ColBERT (or other lengths) than this "
                         f"one: make them again with `{COMMAND} --overwrite`, or search with the model itself.")
    key = _key(ds)
    if meta["sets"].get(key) != _digest(ds):
        held = ", ".join(meta["sets"]) or "none"
        raise ValueError(f"{path} holds no scores for these queries and documents of {key} (it holds {held}; a "
                         "subset such as XLAB_FAST's is not among them): search with the model itself.")
    return arrays[key], arrays[f"{key} queries"].tolist(), arrays[f"{key} documents"].tolist()


class ScoreTable:
    """A first stage that answers ``ds``'s queries from the shipped MaxSim scores: exact ColBERT search without
    the token vectors. ``search`` looks each query text up; a text the file does not hold is an error.

    Args:
        model: the ColBERT the scores must come from (its weights' fingerprint is checked).
        ds: the dataset whose queries and corpus the scores must cover.
        path: the shipped ``.npz`` (default: beside the ``colbert`` checkpoint).

    Raises:
        ValueError: the file is another model's, or holds no scores for ``ds``.
    """

    def __init__(self, model: ColBERT, ds: Dataset, path: str | Path = PATH):
        self.scores, qids, self.ids = _table(model, ds, Path(path))
        self.row = {ds.queries[q]: i for i, q in enumerate(qids)}

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: Sequence[str], k: int = 100) -> tuple[list[list[str]], np.ndarray]:
        """Top ``k`` documents for each query text: (ids, one list per query; scores (Q, k)), best first, as
        ``ColbertIndex.search`` with ``index=None`` ranks them.

        Raises:
            TypeError: one string instead of a list.
            ValueError: ``k`` outside 1..N, or a query the table does not hold.
        """
        if isinstance(queries, str):
            raise TypeError("give a list of queries, not one string: e.g. search([query]).")
        if not 1 <= k <= len(self.ids):
            raise ValueError(f"k={k} but the corpus has {len(self.ids)} documents: use 1 <= k <= {len(self.ids)}.")
        missing = [q for q in queries if q not in self.row]
        if missing:
            raise ValueError(f"the shipped MaxSim scores hold no query {missing[0][:60]!r}: search new queries with "
                             "ColBERT itself (Pipeline(ds, colbert)).")
        return top_k(self.scores[[self.row[q] for q in queries]], self.ids, k)


def check(model: ColBERT, ds: Dataset, n: int = 8, seed: int = 0, path: str | Path = PATH) -> dict:
    """Re-encode ``n`` seeded random documents of ``ds`` and every query, score them with MaxSim, and compare with
    the file's columns for those documents; return the largest difference.

    The token vectors are kept in float16 (``encode_documents``), so a fresh score may differ from the stored one
    by a rounding of different batches: a few 1e-4 on the course's file (scores run from about -3 to 28).

    Returns:
        ``{"documents checked": n, "queries": Q, "largest difference": float, "score range": [min, max]}``.
    """
    scores, qids, ids = _table(model, ds, Path(path))
    rows = np.random.default_rng(seed).choice(len(ids), size=min(n, len(ids)), replace=False)
    vectors, lengths = model.encode_documents([document_text(ds.corpus[ids[r]]) for r in rows], show_progress=False)
    Q = torch.from_numpy(model.encode_queries([ds.queries[q] for q in qids]))  # (Q, Lq, dim)
    with torch.inference_mode():
        fresh = maxsim(Q, pad_documents(vectors, lengths)).numpy()  # (Q, n)
    return {"documents checked": len(rows), "queries": len(qids),
            "largest difference": float(np.abs(fresh - scores[:, rows]).max()),
            "score range": [round(float(scores.min()), 1), round(float(scores.max()), 1)]}


def main(argv: list[str] | None = None) -> None:
    from .course_models import load

    args = checkpoints.artifact_arguments(argv, "Score every abstract for each test query with the course ColBERT.",
                                          PATH, "re-encode a random sample of abstracts and compare")
    model = load("colbert")
    if args.check:
        for ds in course_datasets():
            print(_key(ds), check(model, ds, path=args.out))
        return
    arrays = make(model)
    save(arrays, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items() if v.ndim == 2)}")


if __name__ == "__main__":
    main()
