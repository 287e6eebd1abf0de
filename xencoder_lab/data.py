"""Load a retrieval benchmark in BEIR format into plain Python structures (built in notebook 01).

A BEIR dataset is a folder with three parts:

- ``corpus.jsonl``: one document a line, ``{"_id": ..., "title": ..., "text": ...}``
- ``queries.jsonl``: one query a line, ``{"_id": ..., "text": ...}``
- ``qrels/<split>.tsv``: relevance judgments, ``query-id <TAB> corpus-id <TAB> score`` with a header line

Each file is UTF-8 (a byte-order mark is allowed); a malformed line is an error naming the file and the line. Ids
are read as strings; titles and texts must be strings (or null, for none, in the corpus). A line repeated exactly
(a document, a query or a judgment) is kept once, with a warning; the same id or (query, document) pair given other
content (another text, another grade) is an error naming both lines, never a silent choice of one of them.

``load_beir`` finds the folder in this order (``download.find_dataset``): an explicit ``path``;
``$XLAB_DATA/<name>``; the user cache (``$XLAB_CACHE/datasets/<name>``); and only then downloads the public BEIR
zip (progress bar, checksum).

``XLAB_FAST=1`` (set in CI) shrinks evaluation through ``maybe_fast``: a fixed, seeded subset of queries and a
corpus cut to their judged documents plus a fixed sample of distractors. The code path is the same.

>>> toy = load_beir("toy", split="test", path=TOY_PATH)
>>> len(toy.corpus), len(toy.queries), toy.qrels["q1"]
(16, 6, {'d01': 2, 'd02': 1})
>>> document_text(toy.corpus["d12"])
'Measles vaccine. Two doses of the measles vaccine prevent about 97 percent of measles cases.'
"""

from __future__ import annotations

import json
import os
import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from .assets import TOY_PATH  # noqa: F401 (re-exported) in a wheel or in the repository: see assets
from .download import DatasetFormatError, DatasetNotFoundError, find_dataset


@dataclass
class Dataset:
    """One split of a BEIR dataset, as plain dicts.

    corpus:  doc id -> {"title": str, "text": str}         (every document, judged or not)
    queries: query id -> text                               (only the queries judged in this split)
    qrels:   query id -> {doc id: relevance grade (int)}    (grade > 0 means relevant)

    Args:
        name: the dataset's name (e.g. ``"scifact"``); caches key on it.
        split: ``"train"``, ``"test"``, ... (``"train-validation"`` from ``split_validation``).
        corpus: as above.
        queries: as above.
        qrels: as above.
        path: the folder it was loaded from; None when built in memory.
    """

    name: str
    split: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    path: Path | None = None

    def __repr__(self) -> str:
        judgments = sum(len(d) for d in self.qrels.values())
        return (
            f"Dataset({self.name!r}, split={self.split!r}, docs={len(self.corpus)}, "
            f"queries={len(self.queries)}, judgments={judgments})"
        )


def document_text(doc: dict[str, str]) -> str:
    """The text a model or BM25 sees for a document: ``"title. text"`` (just the text when untitled, just
    the title when there is no text, ``""`` when there is neither).

    Args:
        doc: a corpus entry, ``{"title": str, "text": str}`` (either may be missing).

    Returns:
        the text, stripped; a title gets a full stop unless it ends in one.

    >>> document_text({"title": "Only a title", "text": ""})
    'Only a title.'
    """
    title, text = doc.get("title", "").strip(), doc.get("text", "").strip()
    if title and not title.endswith((".", "?", "!")):
        title += "."
    return " ".join(part for part in (title, text) if part)


def sentences(text: str) -> list[str]:
    """A text cut into sentences: after ``.``, ``!`` or ``?`` and white space, before a capital letter (so
    "e.g. this" and "p < 0.05 in" stay whole).

    >>> sentences("Vitamin D was measured. It was low, e.g. in winter! Why?")
    ['Vitamin D was measured.', 'It was low, e.g. in winter!', 'Why?']
    >>> sentences("")
    ['']
    """
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip())


def empty_documents(ds: Dataset) -> set[str]:
    """Ids of the documents with neither a title nor a text (``document_text`` is ``""``: whitespace counts as
    nothing), with a warning that counts them when there are any. A title alone is not empty.

    Every ranking the course builds (``retrieval.search_empty_last``, which ``pipeline.Pipeline`` and
    ``retrieval.run_queries`` go through) puts them after every non-empty document: a model reads an empty
    document as [CLS] [SEP] alone, and a cross-encoder can score that above a real abstract.

    >>> corpus = {"a": {"title": "Aspirin", "text": ""}, "b": {"title": " ", "text": "\\n"}}
    >>> empty_documents(Dataset("mini", "test", corpus, {}, {}))  # warns: 1 of 2 documents of mini are empty
    {'b'}
    """
    empty = [doc_id for doc_id, doc in ds.corpus.items() if not document_text(doc)]
    if len(empty) == len(ds.corpus):
        raise ValueError(f"all {len(empty)} documents of {ds.name} are empty (no title, no text): there is nothing "
                         "to rank; check the corpus file's title and text fields.")
    if empty:
        warnings.warn(f"{len(empty)} of {len(ds.corpus)} documents of {ds.name} are empty (e.g. "
                      f"{', '.join(empty[:3])}): no title, no text. Every ranking puts them after every non-empty "
                      "document.", stacklevel=3)
    return set(empty)


def load_beir(
    name: str = "scifact",
    split: str = "test",
    path: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load one split of a BEIR dataset (see the module docstring for where it is looked for).

    Args:
        name: the dataset's folder name (e.g. ``"scifact"``, ``"cacm"``).
        split: the qrels file to read, ``qrels/<split>.tsv``; only its judged queries are kept.
        path: a folder holding the dataset (or ``<path>/<name>``); None: ``XLAB_DATA``, then the user cache.
        download: download it into the user cache when it is nowhere else (not with ``path``).

    Returns:
        a ``Dataset``: the whole corpus, the split's queries and qrels.

    Raises:
        DatasetNotFoundError: the dataset is not found (and could not be downloaded).
        DatasetFormatError: a file of it is malformed.
    """
    folder = find_dataset(name, path=path, download=download)
    corpus = _read_corpus(folder / "corpus.jsonl")
    all_queries = _read_queries(folder / "queries.jsonl")
    qrels = _read_qrels(folder / "qrels" / f"{split}.tsv", corpus, all_queries)
    queries = {qid: all_queries[qid] for qid in qrels}
    return Dataset(name=name, split=split, corpus=corpus, queries=queries, qrels=qrels, path=folder)


def _lines(path: Path):
    """(line number, text) of each line of ``path``, decoded as UTF-8 (a byte-order mark at the start is dropped);
    bytes that are not UTF-8 raise an error naming the file, the line and the column."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise DatasetFormatError(
                    f"{path}:{lineno}: byte 0x{raw[err.start]:02x} at column {err.start + 1} is not UTF-8; "
                    "BEIR files are UTF-8: re-encode the file (e.g. `iconv -f latin1 -t utf-8`)."
                ) from None


def _read_jsonl(path: Path, required: tuple[str, ...], nullable: bool = False):
    """(line number, object) of each line of a JSON-lines file; ``title`` and ``text`` must be strings (or null
    where ``nullable``)."""
    if not path.is_file():
        raise DatasetNotFoundError(f"missing file {path}.")
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:  # err.msg may end in "at" ("Invalid control character at"): the place
            raise DatasetFormatError(
                f"{path}:{lineno}: not valid JSON: {err.msg.removesuffix(' at')} at column {err.colno}; each line "
                'must be one JSON object, e.g. {"_id": "d1", "title": "", "text": "..."}.'
            ) from None
        missing = [key for key in required if not isinstance(row, dict) or key not in row]
        if missing:
            raise DatasetFormatError(
                f"{path}:{lineno}: missing field(s) {', '.join(missing)}; each line must be a JSON "
                f"object with {', '.join(required)}."
            )
        for key in ("title", "text"):
            if not isinstance(row.get(key, ""), str) and not (nullable and row[key] is None):
                raise DatasetFormatError(
                    f"{path}:{lineno}: field {key!r} must be a string, got {json.dumps(row[key])[:40]}: put it in "
                    "quotes" + (" (or null for none)." if nullable else ".")
                )
        yield lineno, row


def _unique(path: Path, rows, what: str, fix: str = "give each a distinct id") -> dict:
    """``{key: value}`` from ``(line, key, value)``, a key being an id or a (query id, document id) pair; a key
    repeated with the same value is kept once (with a warning that counts them and names the first repeat), a key
    repeated with another value is an error naming both lines."""
    out, first_line, repeats = {}, {}, []
    for lineno, key, value in rows:
        if key in out:
            if out[key] != value:
                shown = f"id {key!r}" if isinstance(key, str) else "of " + " and ".join(map(repr, key))
                raise DatasetFormatError(
                    f"{path}:{lineno}: {what} {shown} appears again (first on line {first_line[key]}) with "
                    f"other content: {fix}."
                )
            repeats.append(lineno)
            continue
        out[key], first_line[key] = value, lineno
    if repeats:
        warnings.warn(f"{path}: {len(repeats)} repeated {what} line(s) with identical content (first: line "
                      f"{repeats[0]}), each kept once.", stacklevel=3)
    return out


def _read_corpus(path: Path) -> dict[str, dict[str, str]]:
    corpus = _unique(path, (
        (lineno, str(row["_id"]), {"title": row.get("title") or "", "text": row["text"] or ""})
        for lineno, row in _read_jsonl(path, ("_id", "text"), nullable=True)
    ), "document")
    if not corpus:
        raise DatasetFormatError(f"{path}: the corpus is empty; it needs at least one document.")
    return corpus


def _read_queries(path: Path) -> dict[str, str]:
    return _unique(path, ((n, str(row["_id"]), row["text"]) for n, row in _read_jsonl(path, ("_id", "text"))), "query")


def _read_qrels(path: Path, corpus: dict, queries: dict) -> dict[str, dict[str, int]]:
    if not path.is_file():
        splits = sorted(p.stem for p in path.parent.glob("*.tsv"))
        raise DatasetNotFoundError(f"missing file {path}; splits available here: {splits or 'none'}.")
    unknown = []  # (line, what): judgments of a query or document the dataset does not have

    def judgments():
        for lineno, line in _lines(path):
            fields = line.rstrip("\r\n").split("\t")
            if lineno == 1 and fields[0] == "query-id":
                continue
            if not line.strip():
                continue
            if len(fields) != 3:
                raise DatasetFormatError(
                    f"{path}:{lineno}: expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}."
                )
            qid, doc_id, score = fields
            try:
                grade = int(score)
            except ValueError:
                raise DatasetFormatError(f"{path}:{lineno}: score {score!r} is not an integer.") from None
            if qid not in queries or doc_id not in corpus:
                unknown.append((lineno, f"query {qid!r}" if qid not in queries else f"document {doc_id!r}"))
                continue
            yield lineno, (qid, doc_id), grade

    qrels: dict[str, dict[str, int]] = {}
    for (qid, doc_id), grade in _unique(path, judgments(), "judgment", "keep one grade for each pair").items():
        qrels.setdefault(qid, {})[doc_id] = grade
    if unknown:
        warnings.warn(
            f"{path}: {len(unknown)} judgment(s) name a query or document the dataset does not have (first: line "
            f"{unknown[0][0]}, {unknown[0][1]}); they are left out.", stacklevel=3,
        )
    return qrels


def split_validation(ds: Dataset, n: int = 80, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Carve a validation split of ``n`` seeded queries out of ``ds`` (normally train): ``(rest, validation)``.

    Model choices are made on validation; the test split is only ever used to report.

    Args:
        ds: the split to carve from; both parts share its corpus.
        n: validation queries, 0 < n < the split's queries.
        seed: seed of their choice.

    Returns:
        ``(rest, validation)``: Datasets with split names ``ds.split`` and ``ds.split + "-validation"``.

    Raises:
        ValueError: ``n`` out of range.

    >>> train = load_beir("toy", split="test", path=TOY_PATH)
    >>> rest, val = split_validation(train, n=2)
    >>> len(rest.queries), len(val.queries), set(rest.queries).isdisjoint(val.queries)
    (4, 2, True)
    """
    if not 0 < n < len(ds.qrels):
        raise ValueError(f"n={n} but the split has {len(ds.qrels)} queries: use 0 < n < {len(ds.qrels)}.")
    held_out = set(random.Random(seed).sample(sorted(ds.qrels), n))

    def part(keep: bool, split: str) -> Dataset:
        qids = [q for q in ds.qrels if (q in held_out) != keep]
        queries = {q: ds.queries[q] for q in qids}
        return Dataset(ds.name, split, ds.corpus, queries, {q: ds.qrels[q] for q in qids}, ds.path)

    return part(True, ds.split), part(False, f"{ds.split}-validation")


def is_fast() -> bool:
    """True when ``XLAB_FAST`` is set to anything but ``""``, ``0`` or ``false`` (CI sets ``XLAB_FAST=1``)."""
    return os.environ.get("XLAB_FAST", "").strip().lower() not in ("", "0", "false", "no")


def fast_subset(ds: Dataset, n_queries: int = 100, n_distractors: int = 900, seed: int = 0) -> Dataset:
    """A fixed, seeded subset: ``n_queries`` queries, their judged documents and ``n_distractors`` others.

    Args:
        ds: the dataset to cut.
        n_queries: queries kept (all, when it has fewer).
        n_distractors: unjudged documents kept beside the judged ones.
        seed: seed of both choices.

    Returns:
        a ``Dataset`` named ``<name>-fast``, corpus order kept.

    >>> toy = load_beir("toy", path=TOY_PATH)
    >>> small = fast_subset(toy, n_queries=2, n_distractors=3)
    >>> len(small.queries), len(small.corpus) == len({d for j in small.qrels.values() for d in j}) + 3
    (2, True)
    >>> small.queries == fast_subset(toy, n_queries=2, n_distractors=3).queries
    True
    """
    rng = random.Random(seed)
    qids = sorted(ds.qrels)
    qids = sorted(rng.sample(qids, min(n_queries, len(qids))))
    judged = {doc_id for qid in qids for doc_id in ds.qrels[qid]}
    others = sorted(set(ds.corpus) - judged)
    keep = judged | set(rng.sample(others, min(n_distractors, len(others))))
    corpus = {doc_id: doc for doc_id, doc in ds.corpus.items() if doc_id in keep}  # corpus order kept
    return Dataset(
        name=f"{ds.name}-fast",
        split=ds.split,
        corpus=corpus,
        queries={qid: ds.queries[qid] for qid in qids},
        qrels={qid: dict(ds.qrels[qid]) for qid in qids},
        path=ds.path,
    )


def maybe_fast(ds: Dataset) -> Dataset:
    """``fast_subset(ds)`` when ``XLAB_FAST`` is on, else ``ds`` unchanged.

    Args:
        ds: the dataset.

    Returns:
        ``fast_subset(ds)`` (100 queries, 900 distractors) or ``ds`` itself.
    """
    return fast_subset(ds) if is_fast() else ds
