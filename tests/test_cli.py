"""The ``xencoder-lab`` command: its tables are the package's figures, it runs on a messy public-style
collection, and every mistake a user makes ends in one line saying what and how to fix it."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from xencoder_lab import cache, checkpoints, cli, corpus_embeddings, course_models, metrics
from xencoder_lab.bi_encoder import CORPUS_CACHE, BiEncoder
from xencoder_lab.cross_encoder import CrossEncoder
from xencoder_lab.data import TOY_PATH
from xencoder_lab.hybrid import Hybrid
from xencoder_lab.pipeline import Pipeline


def run(capsys, *argv):
    """(exit status, stdout, stderr) of ``xencoder-lab argv``."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def table(out: str) -> dict[str, list[float]]:
    """The rows of ``evaluate``'s table: {system: [values]}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("system"))
    return {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[start + 1:]
            if line and not line.startswith("ms/query")}


@pytest.fixture
def messy(tmp_path):
    """The toy set as a public collection can come: an empty document, a title-only one, odd bytes, a query of
    5,000 words, and graded judgments (0, 1, 2) in a qrels file with a header."""
    folder = tmp_path / "messy"
    shutil.copytree(TOY_PATH, folder)
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "empty", "title": "", "text": ""}) + "\n")
        f.write(json.dumps({"_id": "title-only", "title": "Vitamin D and the immune system", "text": ""}) + "\n")
        f.write(json.dumps({"_id": "odd", "title": "Caf\u00e9 \u2028 \ufffd", "text": "na\u00efve \x7f \u200b"}) + "\n")
    with open(folder / "queries.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "long", "text": "does vitamin d help bones " * 1000}) + "\n")
    with open(folder / "qrels" / "test.tsv", "a") as f:
        f.write("long\td01\t2\nlong\tempty\t0\nlong\ttitle-only\t1\n")
    return folder


def test_evaluate_prints_the_packages_figures(capsys, toy):
    status, out, _ = run(capsys, "evaluate", "--data", TOY_PATH, "--systems", "bm25,zero-shot",
                         "--latency-queries", 2)
    assert status == 0
    rows = table(out)
    bm25 = metrics.evaluate(Pipeline(toy, "bm25").run(depth=16, k=16), toy.qrels, ["ndcg@10", "mrr@10", "recall@100"])
    assert rows["bm25"][:3] == [round(bm25[m], 3) for m in ("ndcg@10", "mrr@10", "recall@100")]
    assert rows["zero-shot"][3] > 0  # ms per query, measured


def test_evaluate_runs_on_a_messy_collection(capsys, messy):
    status, out, err = run(capsys, "evaluate", "--data", messy, "--systems",
                           "bm25,zero-shot,bm25+small-ce@0.5,hybrid+small-ce@0.5", "--latency-queries", 1)
    assert status == 0, err
    assert "7 queries, 19 documents" in out
    rows = table(out)
    assert set(rows) == {"bm25", "zero-shot", "bm25+small-ce@0.5", "hybrid+small-ce@0.5"}
    assert all(0 <= v <= 1 for values in rows.values() for v in values[:3])


def test_hybrid_is_bm25_and_the_bi_encoder_fused(capsys, toy):
    status, out, _ = run(capsys, "evaluate", "--data", TOY_PATH, "--systems", "hybrid,hybrid-min-max,hybrid-rrf",
                         "--latency-queries", 0)
    assert status == 0
    model = course_models.load("bi-encoder")
    for name, fusion in [("hybrid", "z-score"), ("hybrid-min-max", "min-max"), ("hybrid-rrf", "rrf")]:
        hybrid = Pipeline(toy, Hybrid.over(toy, model, weight=0.5, fusion=fusion)).run(depth=16, k=16)
        assert table(out)[name][0] == round(metrics.evaluate(hybrid, toy.qrels, ["ndcg@10"])["ndcg@10"], 3)


def test_scifact_figures_are_the_courses(capsys, scifact_test):
    corpus_embeddings.install(BiEncoder(), scifact_test)  # the shipped embeddings: no 4-minute encoding here
    status, out, _ = run(capsys, "evaluate", "--data", "scifact", "--systems", "bm25,zero-shot",
                         "--latency-queries", 0)
    assert status == 0 and "scifact test: 300 queries, 5183 documents" in out
    rows = table(out)
    assert rows["bm25"][0] == pytest.approx(0.677, abs=0.0005)  # notebook 01, beside 0.665-0.679 published
    assert rows["zero-shot"][0] == pytest.approx(0.650, abs=0.0005)  # notebook 02, beside MTEB's 0.645


def test_search_shows_stage_timings_and_results(capsys):
    status, out, _ = run(capsys, "search", "--data", TOY_PATH, "--system", "bm25+small-ce", "--depth", 5, "--k", 3,
                         "Does vitamin D help bones?")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("bm25+small-ce on toy: first_stage") and "rerank" in lines[0]
    assert len(lines) == 4 and lines[1].split()[0] == "1"


def test_search_without_a_system_runs_the_hybrid(capsys):
    # the measured default (notebooks 05 and 09): no reranker unless asked for
    status, out, _ = run(capsys, "search", "--data", TOY_PATH, "--depth", 5, "--k", 3, "Does vitamin D help bones?")
    assert status == 0 and out.splitlines()[0].startswith("hybrid on toy: first_stage")
    assert out.splitlines()[0].endswith("rerank 0 ms") and len(out.splitlines()) == 4


def test_index_then_search_from_it(capsys, tmp_path):
    folder = tmp_path / "index"
    status, out, _ = run(capsys, "index", "--data", TOY_PATH, "--system", "zero-shot", "--out", folder)
    assert status == 0 and "Flat index of 16 documents" in out
    query = "Does vitamin D help bones?"
    direct = run(capsys, "search", "--data", TOY_PATH, "--system", "zero-shot", query)[1]
    from_index = run(capsys, "search", "--data", TOY_PATH, "--index", folder, "--system", "zero-shot", query)[1]
    assert from_index.splitlines()[1:] == direct.splitlines()[1:]
    status, _, err = run(capsys, "index", "--data", TOY_PATH, "--system", "zero-shot", "--out", folder,
                         "--index", "HNSW32")  # a different index where one was saved
    assert status == 1 and "holds a different saved index" in err and "--overwrite" in err


def test_mistakes_are_one_line_errors(capsys, tmp_path, messy):
    status, _, err = run(capsys, "evaluate", "--data", TOY_PATH, "--systems", "bm25,bm25+bogus")
    assert status == 2 and "unknown reranker 'bogus'" in err
    status, _, err = run(capsys, "evaluate", "--data", tmp_path / "nowhere")
    assert status == 1 and "no folder" in err and len(err.strip().splitlines()) == 1
    (messy / "queries.jsonl").write_text('{"_id": "q1", "text": "ok"}\n{"_id": broken\n')
    status, _, err = run(capsys, "evaluate", "--data", messy, "--systems", "bm25")
    assert status == 1 and "queries.jsonl:2: not valid JSON" in err
    status, _, err = run(capsys, "search", "--data", TOY_PATH, "--system", "bm25", "  ")
    assert status == 2 and "query is empty" in err
    status, _, err = run(capsys, "evaluate", "--data", TOY_PATH, "--metrics", "ndcg@x")
    assert status == 1 and "ndcg@x" in err
    status, _, err = run(capsys, "bench", "nope")
    assert status == 2 and "encode" in err


def test_a_stale_checkpoint_is_refused(capsys, tmp_path, monkeypatch):
    copy = tmp_path / "checkpoints"
    shutil.copytree(checkpoints.CHECKPOINTS / "small-cross-encoder", copy / "small-cross-encoder")
    manifest = json.loads((copy / "small-cross-encoder" / "manifest.json").read_text())
    manifest["probe"] = [[value + 1.0 for value in row] for row in manifest["probe"]]  # outputs it no longer gives
    (copy / "small-cross-encoder" / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(checkpoints, "CHECKPOINTS", copy)
    status, _, err = run(capsys, "search", "--data", TOY_PATH, "--system", "bm25+small-ce", "vitamin D")
    assert status == 1 and "stale" in err and "--overwrite" in err


def test_the_installed_command(tmp_path):
    command = Path(sys.executable).with_name("xencoder-lab")
    done = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and all(c in done.stdout for c in ("evaluate", "search", "index", "train", "bench"))
    done = subprocess.run([command, "search", "--data", tmp_path, "x"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("xencoder-lab: error: no BEIR dataset")


def test_scifact_uses_the_shipped_embeddings_and_logits(capsys, scifact_test, monkeypatch):
    """From an empty cache, the command checks and installs what the course ships: it embeds and scores only the
    few texts of the checkpoint's probe and of each file's check (not 5,183 documents and 30,000 pairs, most of
    half an hour on 2 cores)."""
    encode, score = BiEncoder.encode_documents, CrossEncoder.score

    def encode_a_few(self, texts, *args, **kwargs):
        assert len(texts) < 100, "the corpus was embedded again"
        return encode(self, texts, *args, **kwargs)

    def score_a_few(self, queries, docs, *args, **kwargs):
        assert len(docs) < 100, "shipped pairs were scored again"
        return score(self, queries, docs, *args, **kwargs)

    monkeypatch.setattr(BiEncoder, "encode_documents", encode_a_few)
    monkeypatch.setattr(CrossEncoder, "score", score_a_few)
    status, out, err = run(capsys, "evaluate", "--data", "scifact", "--systems", "bi+ce", "--latency-queries", 0)
    assert status == 0, err
    assert "loading bi-encoder (checking the checkpoint) ..." in err
    assert "installing the shipped corpus embeddings (scifact) into the disk cache ..." in err
    assert "installing the shipped cross-encoder logits (scifact test) into the disk cache ..." in err
    assert table(out)["bi+ce"][0] == pytest.approx(0.806, abs=0.0005)  # notebooks 05 and 09


def test_shipped_files_serve_only_their_model_and_dataset(capsys, toy, scifact_test, bi_encoder, monkeypatch):
    systems = cli.Systems()
    assert not systems.install_shipped("zero-shot", bi_encoder, toy)  # a dataset the file does not hold: quiet
    assert capsys.readouterr().err == ""

    other = copy.deepcopy(bi_encoder)
    with torch.no_grad():
        next(other.doc_tower.parameters()).add_(0.01)
    assert not systems.install_shipped("zero-shot", other, scifact_test)  # another model: its fingerprint
    assert "not using the shipped corpus embeddings (scifact)" in capsys.readouterr().err

    monkeypatch.setattr(corpus_embeddings, "check", lambda *args, **kwargs: {"largest difference": 0.1})
    assert not systems.install_shipped("zero-shot", bi_encoder, scifact_test)  # the right fingerprint, other numbers
    assert "recomputes them 1.0e-01 apart" in capsys.readouterr().err
    assert not (cache.cache_dir() / CORPUS_CACHE).exists()


def test_a_dataset_without_shipped_results_runs_quietly(capsys):
    status, out, err = run(capsys, "evaluate", "--data", TOY_PATH, "--systems", "zero-shot,bm25+small-ce",
                           "--latency-queries", 0)
    assert status == 0 and set(table(out)) == {"zero-shot", "bm25+small-ce"}
    assert "loading small-cross-encoder (checking the checkpoint) ..." in err and "shipped" not in err
