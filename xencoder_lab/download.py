"""Where a dataset comes from: the folder the course finds it in, or the public download for users with the
internet (notebook 01; ``data.load_beir`` reads what this module finds).

``find_dataset`` looks in this order: an explicit ``path``; ``$XLAB_DATA/<name>``; the user cache
(``$XLAB_CACHE/datasets/<name>``); and only then downloads it into the user cache: the public BEIR zip of
``name``, each file checked against its sha256, or, for CACM, which BEIR does not publish, the SMART-format
original, checked and converted to BEIR form (``convert_smart``). A download appears as a dataset folder only
once it is whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from .cache import atomic_folder, cache_dir

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
# Collections the course uses that BEIR does not publish: a SMART-format tarball, converted by convert_smart.
SMART_URLS = {"cacm": "http://ir.dcs.gla.ac.uk/resources/test_collections/cacm/cacm.tar.gz"}
# sha256 of the files inside the public BEIR zips; a download whose files differ is refused. For CACM, the
# start of the sha256 of its SMART source files (data/README.md).
SOURCE_CHECKSUMS = {"cacm": {"cacm.all": "10b28e35", "query.text": "07332cfc", "qrels.text": "a027893"}}
CHECKSUMS = {
    "scifact": {
        "corpus.jsonl": "bc329d2006310e71ec870c0a240921c69f2b8102658fcad8488100a4d385d1b0",
        "queries.jsonl": "067f01aaee010dcffe1197e59e584986503ff6984f15ac3e4d9840fcabd81990",
        "qrels/train.tsv": "4da2bae808e23316834044eb14db1674f9496190e49a57693f6f13b23d428272",
        "qrels/test.tsv": "18a49075af697c9bcdb3cf7b3618a12b32be0697a7e15f10a07de09d914d59b2",
    },
}


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is in none of the places the loader looks, and could not be downloaded."""


class DatasetFormatError(ValueError):
    """A file of the dataset is malformed; the message names the file and the line."""


def find_dataset(name: str, path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the folder holding dataset ``name``; download it into the user cache as a last resort."""
    if path is not None:  # an explicit path is the user's choice: never fall back silently
        found = _dataset_in(Path(path).expanduser(), name)
        if found is None:
            raise DatasetNotFoundError(
                f"no BEIR dataset {name!r} at {Path(path).expanduser()}: expected corpus.jsonl, queries.jsonl "
                f"and qrels/ there or in {Path(path).expanduser() / name}."
            )
        return found
    looked = []
    env = os.environ.get("XLAB_DATA")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(cache_dir() / "datasets")
    for base in candidates:
        found = _dataset_in(base, name)
        if found is not None:
            return found
        looked.append(str(base / name))
    how = (
        f"Set XLAB_DATA to the folder that contains {name}/ (with corpus.jsonl, queries.jsonl and qrels/), "
        f"pass path=..., or download {BEIR_URL.format(name=name)} and unzip it into {cache_dir() / 'datasets'}."
    )
    if not download:
        raise DatasetNotFoundError(f"dataset {name!r} not found; looked in: {', '.join(looked)}. {how}")
    try:
        return download_beir(name, cache_dir() / "datasets")
    except OSError as err:
        raise DatasetNotFoundError(
            f"dataset {name!r} not found (looked in: {', '.join(looked)}) and the download failed "
            f"({err}). {how}"
        ) from err


def _dataset_in(base: Path, name: str) -> Path | None:
    for folder in (base, base / name):
        if (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file():
            return folder
    return None


def download_beir(name: str, target: Path, url: str | None = None) -> Path:
    """Download and unzip the public BEIR ``name.zip`` into ``target/name``, checking file checksums (CACM, which
BEIR does not publish, comes from its SMART-format tarball and is converted, ``convert_smart``).

    The folder appears only once everything is unpacked and checked (unzipped in a temporary folder, then
    renamed into place: ``cache.atomic_folder``), so an interrupted download never looks like a dataset.
    """
    from tqdm.auto import tqdm

    url = url or SMART_URLS.get(name) or BEIR_URL.format(name=name)
    target.mkdir(parents=True, exist_ok=True)
    final = target / name
    with tempfile.TemporaryDirectory(dir=target) as tmp, atomic_folder(final) as dataset:
        archive = Path(tmp) / f"{name}.archive"
        with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        if name in SMART_URLS:  # not in BEIR: a SMART-format tarball, converted here
            with tarfile.open(archive) as tf:  # the "data" filter refuses links and absolute paths where it exists
                tf.extractall(Path(tmp) / "smart", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
            _check_sources(Path(tmp) / "smart", name, url)
            convert_smart(Path(tmp) / "smart", Path(tmp) / name)
        else:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        unpacked = _dataset_in(Path(tmp), name)
        if unpacked is None:
            raise DatasetFormatError(f"{url} does not contain a BEIR dataset named {name!r}.")
        for rel, expected in CHECKSUMS.get(name, {}).items():
            actual = hashlib.sha256((unpacked / rel).read_bytes()).hexdigest()
            if actual != expected:
                raise DatasetFormatError(
                    f"checksum mismatch for {name}/{rel} from {url}: got {actual}, expected {expected}. "
                    "The download is corrupt or the file changed upstream; delete it and try again."
                )
        for part in list(unpacked.iterdir()):
            os.replace(part, dataset / part.name)
    return final


def _smart_records(text: str) -> dict[str, dict[str, str]]:
    """``{id: {field letter: text}}`` from a file in SMART format: ``.I <id>`` opens a record, ``.T``, ``.W``,
    ``.A``... open its fields, whose lines are joined with single spaces.

    >>> smart = ".I 1\\n.T\\nA title\\n.W\\nSome text,\\n  on two lines.\\n.A\\nAuthor\\n.I 02\\n.T\\nOnly a title\\n"
    >>> _smart_records(smart)
    {'1': {'T': 'A title', 'W': 'Some text, on two lines.', 'A': 'Author'}, '2': {'T': 'Only a title'}}
    """
    records: dict[str, dict[str, str]] = {}
    record, field = None, None
    for line in text.splitlines():
        if line.startswith(".I "):
            record, field = records.setdefault(str(int(line[3:])), {}), None
        elif len(line) >= 2 and line[0] == "." and line[1].isalpha() and line[2:].strip() == "" and record is not None:
            field = line[1]
            record[field] = ""
        elif record is not None and field is not None and line.strip():
            record[field] = f"{record[field]} {line.strip()}".strip()
    return records


def convert_smart(source: Path, target: Path) -> Path:
    """Write the SMART-format CACM files in ``source`` (``cacm.all``, ``query.text``, ``qrels.text``) as a BEIR
    folder ``target``: documents with their title (``.T``) and abstract (``.W``, empty for about half), the
    judged queries (``.W``), and the judgments (``query doc 0 0`` lines) as ``qrels/test.tsv`` with grade 1."""
    docs = _smart_records((source / "cacm.all").read_text(encoding="latin-1"))
    queries = _smart_records((source / "query.text").read_text(encoding="latin-1"))
    judged: dict[str, list[str]] = {}
    for line in (source / "qrels.text").read_text(encoding="latin-1").splitlines():
        if line.strip():
            qid, doc_id = line.split()[:2]
            judged.setdefault(str(int(qid)), []).append(str(int(doc_id)))
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    with open(target / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc_id, fields in docs.items():
            f.write(json.dumps({"_id": doc_id, "title": fields.get("T", ""), "text": fields.get("W", "")}) + "\n")
    with open(target / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid in sorted(judged, key=int):
            f.write(json.dumps({"_id": qid, "text": queries[qid].get("W", "")}) + "\n")
    with open(target / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid in sorted(judged, key=int):
            f.writelines(f"{qid}\t{doc_id}\t1\n" for doc_id in judged[qid])
    return target


def _check_sources(folder: Path, name: str, url: str) -> None:
    for rel, prefix in SOURCE_CHECKSUMS.get(name, {}).items():
        if not (folder / rel).is_file():
            raise DatasetFormatError(f"{url} does not hold {rel}: is it the {name} collection?")
        actual = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
        if not actual.startswith(prefix):
            raise DatasetFormatError(f"checksum mismatch for {name}/{rel} from {url}: got {actual[:12]}..., "
                                     f"expected {prefix}...; the download is corrupt or the file changed.")
