"""Compare search systems side by side: a query box, system checkboxes, results with scores and latencies
(notebook 05).

``comparison`` returns an ipywidgets form for JupyterLab. Its results are plain HTML from ``results_html``,
so the same table can be shown where widgets do not run (a notebook viewed on GitHub, or run headless in CI):

>>> from xencoder_lab.data import TOY_PATH, load_beir
>>> from xencoder_lab.pipeline import Pipeline
>>> toy = load_beir("toy", path=TOY_PATH)
>>> systems = {"BM25": Pipeline(toy, first_stage="bm25")}
>>> form = comparison(systems, toy, query="Does aspirin prevent heart attacks?", depth=5, k=2)
>>> "d04" in results_html(search(systems, ["BM25"], "Does aspirin prevent heart attacks?", 5, 2), toy)
True
"""

from __future__ import annotations

import html
from typing import Mapping, Sequence

from .data import Dataset
from .extras import require
from .pipeline import Pipeline, Result


def search(systems: Mapping[str, Pipeline], names: Sequence[str], query: str, depth: int, k: int) -> dict[str, Result]:
    """Run ``query`` through each chosen system: ``{name: Result}``, in the order of ``names``.

    Args:
        systems: ``{name: Pipeline}``.
        names: the systems to run.
        query: one query text.
        depth: the rerank depth: candidates reranked.
        k: documents returned.

    Returns:
        ``{name: pipeline.Result}``.

    Raises:
        ValueError: a name not in ``systems`` (or a bad query or depth, from ``Pipeline.search``).
    """
    unknown = [n for n in names if n not in systems]
    if unknown:
        raise ValueError(f"unknown system {unknown[0]!r}: choose from {', '.join(systems)}.")
    return {name: systems[name].search(query, depth=depth, k=k) for name in names}


def results_html(results: Mapping[str, Result], ds: Dataset, judged: Mapping[str, int] | None = None) -> str:
    """One column per system: rank, title, score; a check mark on documents ``judged`` relevant (when known)
    and the time each stage took, in milliseconds.

    Args:
        results: ``{system name: pipeline.Result}`` (from ``search``).
        ds: the dataset the ids belong to (for titles).
        judged: ``{doc id: grade}`` of the query, when known; None: no marks.

    Returns:
        an HTML string (show it with ``IPython.display.HTML``).
    """
    columns = []
    for name, result in results.items():
        stages = " + ".join(f"{stage.replace('_', ' ')} {1000 * s:.0f} ms" for stage, s in result.seconds.items())
        rows = "".join(
            f"<tr><td>{rank}</td><td>{'&#10003;' if judged and judged.get(doc_id, 0) > 0 else ''}</td>"
            f"<td title='{html.escape(doc_id)}'>{html.escape(_title(ds, doc_id))}</td>"
            f"<td style='text-align:right'>{score:.3f}</td></tr>"
            for rank, (doc_id, score) in enumerate(zip(result.ids, result.scores), start=1)
        )
        columns.append(
            f"<div style='flex:1;min-width:260px'><b>{html.escape(name)}</b><br><small>{stages}</small>"
            f"<table><tr><th>#</th><th></th><th>document</th><th>score</th></tr>{rows}</table></div>"
        )
    return f"<div style='display:flex;gap:16px;flex-wrap:wrap'>{''.join(columns)}</div>"


def _title(ds: Dataset, doc_id: str, width: int = 80) -> str:
    doc = ds.corpus[doc_id]
    text = doc.get("title") or doc.get("text", "")
    return text if len(text) <= width else text[: width - 1] + "…"


def comparison(
    systems: Mapping[str, Pipeline],
    ds: Dataset,
    query: str = "",
    depth: int = 20,
    k: int = 5,
):
    """An ipywidgets form: type a query (or paste one of ``ds``'s, whose judgments are then marked), choose
    systems and the rerank depth (a slider), press Enter or Search. Bad input is shown as a message, not raised.

    Args:
        systems: ``{name: Pipeline}``.
        ds: the dataset the systems search.
        query: the query the box starts with.
        depth: the rerank depth the slider starts at.
        k: documents shown per system.

    Returns:
        an ``ipywidgets.VBox`` to display.

    Raises:
        ImportError: ipywidgets is not installed (the ``course`` extra).
    """
    w = require("ipywidgets", "course", "widgets.comparison")

    box = w.Text(value=query, placeholder="type a query and press Enter", continuous_update=False,
                 layout=w.Layout(width="70%"))
    chosen = w.SelectMultiple(options=list(systems), value=tuple(systems), description="systems", rows=len(systems))
    slider = w.IntSlider(value=depth, min=k, max=max(100, depth), step=5, description="rerank depth",
                         style={"description_width": "initial"}, continuous_update=False)
    button = w.Button(description="Search", button_style="primary")
    out = w.HTML()
    judgments = {text: ds.qrels.get(qid) for qid, text in ds.queries.items()}

    def run(_=None):
        if not chosen.value:
            out.value = "<p style='color:#b00'>tick at least one system.</p>"
            return
        try:
            results = search(systems, list(chosen.value), box.value, slider.value, k)
            out.value = results_html(results, ds, judgments.get(box.value))
        except ValueError as err:
            out.value = f"<p style='color:#b00'>{html.escape(str(err))}</p>"

    button.on_click(run)
    for control in (box, chosen, slider):  # Enter in the box, or a changed choice, searches again
        control.observe(run, names="value")
    if query:
        run()
    return w.VBox([w.HBox([box, button]), w.HBox([chosen, slider]), out])
