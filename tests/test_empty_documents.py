"""Empty documents (no title, no text) rank after every non-empty one in every system, first stage or reranker,
and a pipeline counts them in one warning; a title alone is not empty."""

import warnings

import numpy as np
import pytest

from xencoder_lab.bm25 import BM25
from xencoder_lab.colbert import ColBERT
from xencoder_lab.data import Dataset, document_text, empty_documents
from xencoder_lab.hybrid import Hybrid
from xencoder_lab.pipeline import Pipeline
from xencoder_lab.poly_encoder import PolyEncoder
from xencoder_lab.retrieval import dense_run, run_queries

EMPTY = {"empty", "blank"}
WARNING = "2 of 19 documents of toy-with-empty are empty \\(e.g. empty, blank\\)"


@pytest.fixture(scope="module")
def ds(toy):
    """The toy set, two empty documents first (corpus order breaks ties) and a title-only one last; three
    queries, for speed."""
    corpus = {"empty": {"title": "", "text": ""}, "blank": {"title": "  ", "text": "\n\t "}, **toy.corpus,
              "title-only": {"title": "Aspirin and heart attacks", "text": ""}}
    queries = {q: toy.queries[q] for q in ("q1", "q3", "q5")}
    return Dataset("toy-with-empty", "test", corpus, queries, {q: toy.qrels[q] for q in queries})


SYSTEMS = {  # name: (first stage, reranker, fusion); "bi" is the zero-shot BiEncoder(), "ce" the warm start
    "bm25": ("bm25", None, None),
    "bi": ("bi", None, None),
    "hybrid": ("hybrid", None, None),
    "poly": ("poly", None, None),
    "colbert": ("colbert", None, None),
    "bm25+ce": ("bm25", "ce", None),
    "bi+ce@0.5": ("bi", "ce", 0.5),
}


def pipeline(name, ds, bi_encoder, warm) -> Pipeline:
    first, reranker, fusion = SYSTEMS[name]
    stages = {"bm25": lambda: "bm25", "bi": lambda: bi_encoder, "hybrid": lambda: Hybrid.over(ds, bi_encoder),
              "poly": lambda: PolyEncoder(max_length=32), "colbert": lambda: ColBERT(max_length=32)}
    return Pipeline(ds, stages[first](), warm if reranker else None, fusion)


def assert_empty_last(ranking):
    """No empty document above a non-empty one."""
    flags = [d in EMPTY for d in ranking]
    assert flags == sorted(flags), ranking


def test_empty_means_no_title_and_no_text(ds):
    with pytest.warns(UserWarning, match=WARNING):
        assert empty_documents(ds) == EMPTY
    assert document_text(ds.corpus["title-only"]) == "Aspirin and heart attacks."  # ranked as any other


@pytest.mark.parametrize("name", SYSTEMS)
def test_empty_documents_rank_last_in_every_system(name, ds, bi_encoder, warm):
    with pytest.warns(UserWarning, match=WARNING) as caught:
        pipe = pipeline(name, ds, bi_encoder, warm)
    assert sum("are empty" in str(w.message) for w in caught) == 1  # once a pipeline, however many models
    n = len(ds.corpus)
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        whole, top = pipe.run(depth=n, k=n), pipe.run(depth=5, k=8)
        results = [pipe.search(ds.queries[q], depth=n, k=n) for q in ("q1", "q5")]
        short = [pipe.search(ds.queries[q], depth=6, k=3) for q in ("q1", "q5")]
    assert not [w for w in later if "are empty" in str(w.message)]  # not once a query
    for qid in ds.queries:
        assert_empty_last(whole[qid])
        assert set(whole[qid][-2:]) == EMPTY and len(set(whole[qid])) == n
        assert len(top[qid]) == 8 and not EMPTY & set(top[qid])  # the top 8 are 8 non-empty documents
    for result in results:
        assert_empty_last(result.ids)
        assert_empty_last(result.first_stage_ids)
        assert set(result.ids[-2:]) == EMPTY and result.scores[-2:] == [-np.inf, -np.inf]
        assert np.isfinite(result.scores[:-2]).all()
    assert not any(EMPTY & set(r.ids + r.first_stage_ids) for r in short)


def test_first_stage_runs_put_them_last_and_keep_the_rest_in_order(ds, toy, bi_encoder):
    texts = {d: document_text(doc) for d, doc in ds.corpus.items()}
    bm25 = BM25(list(texts.values()), list(texts))
    stopwords = Dataset(ds.name, "test", ds.corpus, {"q": "the and of"}, {"q": {"d01": 1}})  # every score 0
    with pytest.warns(UserWarning, match="no terms left"):
        assert bm25.search(["the and of"], k=2)[0] == [["empty", "blank"]]  # corpus order: what a run must not be
    with pytest.warns(UserWarning, match=WARNING), pytest.warns(UserWarning, match="no terms left"):
        assert run_queries(bm25, stopwords, k=2) == {"q": ["d01", "d02"]}
    with pytest.warns(UserWarning, match=WARNING):
        run = dense_run(bi_encoder, ds, k=len(ds.corpus))
    alone = dense_run(bi_encoder, toy, k=len(toy.corpus))
    for qid, ranking in run.items():
        assert set(ranking[-2:]) == EMPTY
        assert [d for d in ranking if d in toy.corpus] == alone[qid]  # the model's order, the empty ones aside


def test_a_corpus_of_empty_documents_is_refused(toy):
    blank = Dataset("blank", "test", {"a": {"title": "", "text": " "}}, toy.queries, toy.qrels)
    with pytest.raises(ValueError, match="all 1 documents of blank are empty"):
        Pipeline(blank, "bm25")
