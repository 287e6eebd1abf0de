"""The command on bad input: a malformed dataset, a wrong argument, a saved index whose corpus changed, a cut-short
cache entry, an interruption. Each ends in one line (status 1, 2 for a usage error, 130 when interrupted), never a
traceback, and leaves no half-written cache entry; odd but valid data (Unicode, empty and title-only documents, a
long query, a byte-order mark, repeated lines) runs with status 0. The cheap systems (bm25, zero-shot) keep it fast."""

import json
import os
import shutil
from pathlib import Path

import pytest
from test_cli import run, table

from xencoder_lab import cli
from xencoder_lab.data import TOY_PATH


def toy_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(TOY_PATH, folder)
    return folder


def replace_line(path: Path, number: int, text: str) -> None:
    """Put ``text`` in place of line ``number`` (from 1) of ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def append(path: Path, *lines: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def is_progress(line: str) -> bool:
    """A line of the command's progress on stderr (``cli.progress``: "loading bi-encoder ...")."""
    return line.endswith(" ...") and not line.startswith("xencoder-lab:")


def error(err: str) -> str:
    """The one error line on stderr (warnings aside), after checking there is no traceback and no temporary file
    in the cache folder."""
    assert "Traceback" not in err
    assert not [p for p in Path(os.environ["XLAB_CACHE"]).rglob("*") if p.name.endswith(".tmp")]
    lines = [line for line in err.splitlines() if not line.startswith("xencoder-lab: warning:")]
    assert [line for line in lines if "error:" in line or "interrupted" in line] == lines[-1:], err
    return lines[-1]


@pytest.mark.parametrize("argv, message", [
    (["--systems", "bm25,bm25+small-ce@2"], "fusion weight after @ must be a number in [0, 1]"),
    (["--systems", "bm25,bm25+small-ce@"], "fusion weight after @"),
    (["--systems", "bm25,bm25+"], "unknown reranker ''"),
    (["--systems", ","], "names no system"),
    (["--systems", "bm25,bm25"], "bm25 more than once"),
    (["--depth", "0"], "--depth/--k1: 0 is below 1"),
    (["--depth", "-5"], "--depth/--k1: -5 is below 1"),
    (["--k1", "ten"], "--depth/--k1: 'ten' is not a whole number"),  # --k1: the flag's former name, an alias
    (["--latency-queries", "-3"], "--latency-queries: -3 is below 0"),
    (["--metrics", ","], "names no metric"),
])
def test_bad_arguments_are_usage_errors_before_any_work(capsys, argv, message):
    status, out, err = run(capsys, "evaluate", "--data", TOY_PATH, *argv)
    assert status == 2 and out == ""  # nothing ran, nothing printed
    assert message in error(err)


def test_a_depth_below_10_works(capsys):
    status, out, err = run(capsys, "evaluate", "--data", TOY_PATH, "--systems", "bm25", "--depth", 5,
                           "--latency-queries", 2)
    assert status == 0, err
    assert "reranker" not in out and "searched alone for its top 5" in out and set(table(out)) == {"bm25"}


def test_rows_already_measured_survive_a_later_failure(capsys, monkeypatch):
    model = cli.Systems.model

    def failing(self, name, ds=None):
        if name == "zero-shot":
            raise RuntimeError("no model\nhere")
        return model(self, name, ds)

    monkeypatch.setattr(cli.Systems, "model", failing)
    status, out, err = run(capsys, "evaluate", "--data", TOY_PATH, "--systems", "bm25,zero-shot")
    assert status == 1 and set(table(out)) == {"bm25"}
    assert error(err) == "xencoder-lab: error: RuntimeError: no model here (run `xencoder-lab --debug ...` to see " \
                         "the traceback)"
    with pytest.raises(RuntimeError, match="no model"):
        cli.main(["--debug", "evaluate", "--data", str(TOY_PATH), "--systems", "zero-shot"])


def test_an_interruption_is_one_line_and_status_130(capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_dataset", interrupt)
    status, out, err = run(capsys, "evaluate", "--data", TOY_PATH)
    assert status == 130 and error(err) == "xencoder-lab: interrupted"


BAD = {  # name: (file, line to replace (0: append), new text, what the error says)
    "text-number": ("corpus.jsonl", 4, '{"_id": "d04", "title": "t", "text": 123}',
                    "corpus.jsonl:4: field 'text' must be a string, got 123: put it in quotes"),
    "query-number": ("queries.jsonl", 2, '{"_id": "q2", "text": 123}',
                     "queries.jsonl:2: field 'text' must be a string, got 123"),
    "title-list": ("corpus.jsonl", 1, '{"_id": "d01", "title": ["a"], "text": "x"}',
                   "corpus.jsonl:1: field 'title' must be a string"),
    "broken-json": ("queries.jsonl", 2, '{"_id": "q2", "text": "Aspirin prevents',
                    "queries.jsonl:2: not valid JSON: Invalid control character at column 40; each line must be"),
    "conflicting-ids": ("corpus.jsonl", 0, '{"_id": "d01", "text": "another text"}',
                        "corpus.jsonl:17: document id 'd01' appears again (first on line 1) with other content"),
    "conflicting-grades": ("qrels/test.tsv", 0, "q1\td01\t0", "test.tsv:12: judgment of 'q1' and 'd01' appears again "
                           "(first on line 2) with other content: keep one grade for each pair."),
    "empty-query": ("queries.jsonl", 1, '{"_id": "q1", "text": "  "}', "queries.jsonl: query 'q1' is empty"),
}


@pytest.mark.parametrize("name", BAD)
def test_a_malformed_dataset_is_one_line_naming_file_and_line(capsys, tmp_path, name):
    file, line, text, message = BAD[name]
    folder = toy_copy(tmp_path)
    if line:
        replace_line(folder / file, line, text)
    else:
        append(folder / file, text)
    status, out, err = run(capsys, "evaluate", "--data", folder, "--systems", "bm25,zero-shot")
    assert status == 1 and out == ""  # refused before the first system ran
    assert message in error(err)
    assert not list(Path(os.environ["XLAB_CACHE"]).rglob("*.npy"))  # nothing was encoded


def test_odd_but_valid_data_runs(capsys, tmp_path):
    """Unicode, an empty and a title-only document, a 2,000-word query, a document and a judgment given twice, and
    a byte-order mark at the start of each file: warnings, one line each, naming file and line; then the table."""
    folder = toy_copy(tmp_path)
    append(folder / "corpus.jsonl", json.dumps({"_id": "empty", "title": "", "text": ""}),
           json.dumps({"_id": "title-only", "title": "Vitamin D and the immune system", "text": ""}),
           json.dumps({"_id": "unicode", "title": "Caf\u00e9 \u2028 \ufffd \U0001f9ea", "text": "na\u00efve \u200b"},
                      ensure_ascii=False),
           (folder / "corpus.jsonl").read_text().splitlines()[0])
    append(folder / "queries.jsonl", json.dumps({"_id": "long", "text": "does vitamin d help bones " * 400}))
    append(folder / "qrels" / "test.tsv", "long\td01\t2", "long\tunicode\t0", "q1\td01\t2")
    for file in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (folder / file).write_bytes(b"\xef\xbb\xbf" + (folder / file).read_bytes())
    status, out, err = run(capsys, "evaluate", "--data", folder, "--systems", "bm25,zero-shot", "--latency-queries", 0)
    assert status == 0, err
    assert "7 queries, 19 documents" in out and set(table(out)) == {"bm25", "zero-shot"}
    assert "corpus.jsonl: 1 repeated document line(s) with identical content (first: line 20)" in err
    assert "test.tsv: 1 repeated judgment line(s) with identical content (first: line 14), each kept once" in err
    assert "Traceback" not in err and all(line.startswith("xencoder-lab: warning:") or is_progress(line)
                                          for line in err.splitlines())


def test_a_saved_index_is_refused_once_its_corpus_changed(capsys, tmp_path):
    folder, saved = toy_copy(tmp_path), tmp_path / "index"
    status, _, err = run(capsys, "index", "--data", folder, "--system", "zero-shot", "--out", saved)
    assert status == 0, err
    assert set(json.loads((saved / "index.json").read_text())["built_from"]) >= {"model", "docs", "max_length"}
    query = ["search", "--data", folder, "--index", saved, "--system", "zero-shot", "aspirin"]
    assert run(capsys, *query)[0] == 0
    corpus = (folder / "corpus.jsonl").read_text()
    for changed in (corpus.replace("Low-dose aspirin reduced", "Low-dose aspirin did not change"),
                    corpus.replace('"d04"', '"d04-renamed"')):  # the same count of documents
        (folder / "corpus.jsonl").write_text(changed)
        status, out, err = run(capsys, *query)
        assert status == 1 and out == ""
        assert error(err) == (f"xencoder-lab: error: {saved} cannot serve this search: the documents of {folder} "
                              "(ids or texts) changed since it was built; rebuild it with `xencoder-lab index --data "
                              f"{folder} --system zero-shot --index Flat --out {saved} --overwrite`.")
    assert run(capsys, "index", "--data", folder, "--system", "zero-shot", "--out", saved, "--overwrite")[0] == 0
    status, out, _ = run(capsys, *query)
    assert status == 0 and "d04-renamed" in out


def test_an_index_factory_key_faiss_cannot_build_is_refused_before_encoding(capsys, tmp_path):
    status, out, err = run(capsys, "index", "--data", TOY_PATH, "--system", "zero-shot", "--index", "Bogus42",
                           "--out", tmp_path / "index")
    assert status == 1 and "'Bogus42' is not a FAISS index_factory key" in error(err) and "HNSW32" in err
    assert not (tmp_path / "index").exists() and not list(Path(os.environ["XLAB_CACHE"]).rglob("*.npy"))


def test_a_cut_short_cache_entry_is_computed_again(capsys):
    argv = ["evaluate", "--data", TOY_PATH, "--systems", "zero-shot,bm25+small-ce", "--depth", 3,
            "--latency-queries", 0]
    status, first, _ = run(capsys, *argv)
    assert status == 0 and "; a reranker reads its top 3" in first.splitlines()[0]  # said where a system reranks
    entries = [p for p in Path(os.environ["XLAB_CACHE"]).rglob("*") if p.suffix in (".npy", ".npz")]
    assert {p.suffix for p in entries} == {".npy", ".npz"}
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    status, again, err = run(capsys, *argv)
    assert status == 0 and table(again) == table(first)
    for entry in entries:
        assert f"cache entry {entry} is corrupt" in err and "computing it again" in err
    assert "Traceback" not in err and not [p for p in entries[0].parents[1].rglob("*") if p.name.endswith(".tmp")]
    assert all(is_progress(line) for line in run(capsys, *argv)[2].splitlines())  # rewritten whole: no warning


def test_help_shows_no_markup(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0 and "--debug" in out and "``" not in out
