import pytest

from xencoder_lab.pipeline import Pipeline
from xencoder_lab.widgets import comparison, results_html, search


@pytest.fixture(scope="module")
def systems(toy, warm):
    return {"BM25": Pipeline(toy, "bm25"), "BM25 -> cross-encoder": Pipeline(toy, "bm25", warm)}


def test_results_side_by_side_with_judgments_and_latencies(systems, toy):
    query = toy.queries["q5"]
    results = search(systems, list(systems), query, depth=8, k=3)
    page = results_html(results, toy, toy.qrels["q5"])
    assert page.count("<table>") == 2 and page.count("<tr><td>") == 6
    assert "first stage" in page and "rerank" in page and " ms" in page
    relevant = [d for d, g in toy.qrels["q5"].items() if g > 0 and d in results["BM25 -> cross-encoder"].ids]
    assert relevant and page.count("&#10003;") >= len(relevant)


def test_titles_are_escaped(systems, toy):
    result = systems["BM25"].search(toy.queries["q2"], depth=3, k=1)
    doc_id = result.ids[0]
    original = toy.corpus[doc_id]
    toy.corpus[doc_id] = {**original, "title": "<b>bold</b> & co"}
    try:
        assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in results_html({"x": result}, toy)
    finally:
        toy.corpus[doc_id] = original


def test_form_searches_and_shows_bad_input_as_a_message(systems, toy):
    form = comparison(systems, toy, query=toy.queries["q5"], depth=8, k=3)
    (box, button), (chosen, _), out = form.children[0].children, form.children[1].children, form.children[2]
    assert out.value.count("<table>") == 2 and "&#10003;" in out.value  # a claim of the dataset: judgments shown
    chosen.value = ("BM25",)
    assert out.value.count("<table>") == 1
    box.value = "   "
    assert "query is empty" in out.value
    box.value = "salt and blood pressure"
    button.click()
    assert out.value.count("<table>") == 1 and "&#10003;" not in out.value  # a new query: no judgments
    chosen.value = ()
    assert "at least one system" in out.value
    with pytest.raises(ValueError, match="unknown system 'nope'"):
        search(systems, ["nope"], "q", 5, 2)
