import hashlib
import json
import os
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from xencoder_lab import data, download
from xencoder_lab.data import (
    TOY_PATH,
    DatasetFormatError,
    DatasetNotFoundError,
    fast_subset,
    load_beir,
    maybe_fast,
)
from xencoder_lab.download import download_beir


def copy_toy(tmp_path: Path) -> Path:
    folder = tmp_path / "toy"
    shutil.copytree(TOY_PATH, folder)
    return folder


def test_toy_structure(toy):
    assert len(toy.corpus) == 16 and len(toy.queries) == 6
    assert set(toy.queries) == set(toy.qrels)  # only judged queries of the split
    assert toy.corpus["d01"]["title"] == "Vitamin D and bone density"
    assert all(isinstance(g, int) for judged in toy.qrels.values() for g in judged.values())
    train = load_beir("toy", split="train", path=TOY_PATH)
    assert set(train.queries) == {"q7", "q8"}


def test_scifact_sizes(scifact_test):
    assert len(scifact_test.corpus) == 5183
    assert len(scifact_test.queries) == 300
    assert sum(len(j) for j in scifact_test.qrels.values()) == 339
    train = load_beir("scifact", split="train", download=False)
    assert len(train.queries) == 809 and sum(len(j) for j in train.qrels.values()) == 919


def test_lookup_order_env_then_cache(tmp_path, monkeypatch):
    env_root, cache_root = tmp_path / "env", tmp_path / "cache"
    shutil.copytree(TOY_PATH, env_root / "toy")
    shutil.copytree(TOY_PATH, cache_root / "datasets" / "toy")
    monkeypatch.setenv("XLAB_CACHE", str(cache_root))
    monkeypatch.setenv("XLAB_DATA", str(env_root))
    assert download.find_dataset("toy") == env_root / "toy"
    monkeypatch.delenv("XLAB_DATA")
    assert download.find_dataset("toy") == cache_root / "datasets" / "toy"


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("XLAB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as err:
        load_beir("scifact", download=False)
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "scifact") in message and "XLAB_DATA" in message
    with pytest.raises(DatasetNotFoundError, match="no BEIR dataset 'toy' at"):
        load_beir("toy", path=tmp_path / "empty")


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("XLAB_DATA", raising=False)
    monkeypatch.setattr(download, "BEIR_URL", f"file://{tmp_path}/absent-{{name}}.zip")
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_beir("toy")


def test_malformed_json_names_file_and_line(tmp_path):
    folder = copy_toy(tmp_path)
    lines = (folder / "corpus.jsonl").read_text().splitlines()
    lines[3] = '{"_id": "d04", "title": "broken"'
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"corpus\.jsonl:4: not valid JSON"):
        load_beir("toy", path=folder)


def test_missing_field_and_bad_qrels(tmp_path):
    folder = copy_toy(tmp_path)
    with open(folder / "queries.jsonl", "a") as f:
        f.write(json.dumps({"id": "q9", "text": "no _id"}) + "\n")
    with pytest.raises(DatasetFormatError, match=r"queries\.jsonl:9: missing field\(s\) _id"):
        load_beir("toy", path=folder)

    folder = copy_toy(tmp_path / "b")
    with open(folder / "qrels" / "test.tsv", "a") as f:
        f.write("q1\tnot-a-doc\t1\n")
    with pytest.warns(UserWarning, match=r"test\.tsv: 1 judgment\(s\) .* \(first: line 12, document 'not-a-doc'\)"):
        ds = load_beir("toy", path=folder)
    assert "not-a-doc" not in ds.qrels["q1"] and len(ds.qrels["q1"]) == 2  # left out, the rest kept

    folder = copy_toy(tmp_path / "c")
    with open(folder / "qrels" / "test.tsv", "a") as f:
        f.write("q1 d03 1\n")
    with pytest.raises(DatasetFormatError, match=r"test\.tsv:12: expected 3 tab-separated fields"):
        load_beir("toy", path=folder)


def test_empty_corpus_and_missing_split(tmp_path):
    folder = copy_toy(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="splits available here: \\['test', 'train'\\]"):
        load_beir("toy", split="dev", path=folder)
    (folder / "corpus.jsonl").write_text("\n")
    with pytest.raises(DatasetFormatError, match="corpus is empty"):
        load_beir("toy", path=folder)


def _zip_of(folder: Path, name: str, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for file in folder.rglob("*"):
            if file.is_file():
                zf.write(file, Path(name) / file.relative_to(folder))
    return target


def test_download_unpacks_and_checks_checksums(tmp_path, monkeypatch):
    archive = _zip_of(TOY_PATH, "toy", tmp_path / "toy.zip")
    sums = {
        rel: hashlib.sha256((TOY_PATH / rel).read_bytes()).hexdigest()
        for rel in ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"]
    }
    monkeypatch.setitem(download.CHECKSUMS, "toy", sums)
    folder = download_beir("toy", tmp_path / "datasets", url=archive.as_uri())
    assert folder == tmp_path / "datasets" / "toy"
    assert len(load_beir("toy", path=folder).corpus) == 16

    monkeypatch.setitem(download.CHECKSUMS, "toy", {**sums, "corpus.jsonl": "0" * 64})
    with pytest.raises(DatasetFormatError, match="checksum mismatch for toy/corpus.jsonl"):
        download_beir("toy", tmp_path / "other", url=archive.as_uri())
    assert not (tmp_path / "other" / "toy").exists()  # nothing half-checked is left where the loader looks


def test_loader_downloads_into_the_cache_as_a_last_resort(tmp_path, monkeypatch):
    _zip_of(TOY_PATH, "toy", tmp_path / "toy.zip")
    monkeypatch.delenv("XLAB_DATA", raising=False)
    monkeypatch.setattr(download, "BEIR_URL", f"file://{tmp_path}/{{name}}.zip")
    ds = load_beir("toy")
    assert ds.path == download.cache_dir() / "datasets" / "toy"
    assert len(ds.queries) == 6


def test_fast_subset_is_fixed_and_complete(scifact_test, monkeypatch):
    small = fast_subset(scifact_test)
    assert len(small.queries) == 100
    judged = {d for j in small.qrels.values() for d in j}
    assert judged <= set(small.corpus)
    assert len(small.corpus) == len(judged) + 900
    assert small.queries == fast_subset(scifact_test).queries
    assert list(small.corpus) == [d for d in scifact_test.corpus if d in small.corpus]  # corpus order kept
    monkeypatch.setenv("XLAB_FAST", "1")
    assert maybe_fast(scifact_test).queries == small.queries
    monkeypatch.setenv("XLAB_FAST", "0")
    assert maybe_fast(scifact_test) is scifact_test


def test_bytes_that_are_not_utf8_name_file_line_and_column(tmp_path):
    folder = copy_toy(tmp_path)
    lines = (folder / "corpus.jsonl").read_bytes().splitlines(keepends=True)
    lines[6] = b'{"_id": "x", "text": "caf\xe9"}\n'  # latin-1, not UTF-8
    (folder / "corpus.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(DatasetFormatError, match=r"corpus\.jsonl:7: byte 0x(ef|e9) at column \d+ is not UTF-8"):
        load_beir("toy", path=folder)


def test_repeated_ids(tmp_path):
    folder = copy_toy(tmp_path)
    first = (folder / "corpus.jsonl").read_text().splitlines()[0]
    with open(folder / "corpus.jsonl", "a") as f:
        f.write(first + "\n")  # the same document twice: kept once, with a warning
    with pytest.warns(UserWarning, match="1 repeated document line"):
        assert len(load_beir("toy", path=folder).corpus) == 16
    with open(folder / "corpus.jsonl", "a") as f:
        f.write(json.dumps({"_id": "d01", "title": "", "text": "another text"}) + "\n")
    message = r"corpus\.jsonl:18: document id 'd01' appears again \(first on line 1\)"
    with pytest.raises(DatasetFormatError, match=message):
        load_beir("toy", path=folder)


def test_title_only_empty_and_long_documents_load_and_read(tmp_path):
    folder = copy_toy(tmp_path)
    with open(folder / "corpus.jsonl", "a") as f:
        f.write(json.dumps({"_id": "t", "title": "Only a title", "text": ""}) + "\n")
        f.write(json.dumps({"_id": "e", "title": None, "text": None}) + "\n")
        f.write(json.dumps({"_id": "long", "title": "", "text": "word " * 50_000}) + "\n")
    ds = load_beir("toy", path=folder)
    assert data.document_text(ds.corpus["t"]) == "Only a title." and data.document_text(ds.corpus["e"]) == ""
    assert len(data.document_text(ds.corpus["long"])) == 5 * 50_000 - 1


def _smart_file(path: Path, records: list[list[tuple[str, str]]]) -> None:
    """Write records [(field, text), ...] in SMART format, long texts wrapped where a single space stands."""
    lines = []
    for fields in records:
        for field, text in fields:
            if field == "I":
                lines.append(f".I {text}")
                continue
            lines.append(f".{field}")
            row = ""
            for word in re.split(r"(?<! ) (?! )", text):  # break only at a lone space: double spaces stay in a row
                if row and len(row) + len(word) >= 60:
                    lines.append(row)
                    row = word
                else:
                    row = f"{row} {word}" if row else word
            lines.append(row)
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def test_cacm_comes_from_its_smart_tarball_converted_as_the_course_copy(tmp_path, monkeypatch):
    shared = Path(os.environ.get("XLAB_DATA", "")) / "cacm"
    if not (shared / "corpus.jsonl").is_file():
        pytest.skip("no course copy of CACM to compare with (set XLAB_DATA)")
    docs = [json.loads(line) for line in (shared / "corpus.jsonl").read_text().splitlines()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (shared / "queries.jsonl").read_text().splitlines())}
    qrels = [line.split("\t") for line in (shared / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    smart = tmp_path / "smart"
    smart.mkdir()
    _smart_file(smart / "cacm.all", [
        [("I", d["_id"]), ("T", d["title"]), *([("W", d["text"])] if d["text"] else []), ("B", "CACM June, 1970"),
         ("A", "Someone, A."), ("N", "CA700607 JB February 13, 1978"), ("X", f"{d['_id']}\t5\t{d['_id']}")]
        for d in docs
    ])
    _smart_file(smart / "query.text", [[("I", q), ("W", t), ("N", "1. A reader")] for q, t in queries.items()]
                + [[("I", "999"), ("W", "a query nobody judged")]])
    (smart / "qrels.text").write_text("".join(f"{int(q):02d} {d} 0 0\n" for q, d, _ in qrels))
    archive = tmp_path / "cacm.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for f in smart.iterdir():
            tf.add(f, arcname=f.name)
    sums = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:8] for f in smart.iterdir()}
    monkeypatch.setitem(download.SOURCE_CHECKSUMS, "cacm", sums)  # these made-up sources, not the real ones
    folder = download_beir("cacm", tmp_path / "datasets", url=archive.as_uri())
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):  # byte for byte the course's copy
        assert (folder / rel).read_bytes() == (shared / rel).read_bytes(), rel
    monkeypatch.setitem(download.SOURCE_CHECKSUMS, "cacm", {**sums, "cacm.all": "00000000"})
    with pytest.raises(DatasetFormatError, match="checksum mismatch for cacm/cacm.all"):
        download_beir("cacm", tmp_path / "again", url=archive.as_uri())


def test_a_byte_order_mark_repeated_judgments_and_texts_that_are_not_strings(tmp_path):
    folder = copy_toy(tmp_path)
    for file in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (folder / file).write_bytes(b"\xef\xbb\xbf" + (folder / file).read_bytes())  # as some editors save UTF-8
    with open(folder / "qrels" / "test.tsv", "a") as f:
        f.write("q1\td01\t2\n")  # a judgment given twice, with the same grade: kept once
    with pytest.warns(UserWarning, match=r"test\.tsv: 1 repeated judgment line\(s\) .* \(first: line 12\)"):
        ds = load_beir("toy", path=folder)
    assert ds.qrels == load_beir("toy", path=TOY_PATH).qrels
    with open(folder / "qrels" / "test.tsv", "a") as f:
        f.write("q1\td01\t0\n")  # with another grade: neither is chosen silently
    with pytest.raises(DatasetFormatError, match=r"test\.tsv:13: judgment of 'q1' and 'd01' appears again \(first "
                                                 r"on line 2\) with other content: keep one grade for each pair\."):
        load_beir("toy", path=folder)
    folder = copy_toy(tmp_path / "b")
    with open(folder / "queries.jsonl", "a") as f:
        f.write('{"_id": "q9", "text": 123}\n')
    with pytest.raises(DatasetFormatError, match=r"queries\.jsonl:9: field 'text' must be a string, got 123"):
        load_beir("toy", path=folder)
