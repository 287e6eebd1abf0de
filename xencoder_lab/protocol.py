"""The evaluation protocol: in domain, on unseen answers, and out of domain (built in notebook 03).

SciFact's test split shares most of its answers with its train split: most test claims have a relevant abstract
that some training claim also cites. A model trained on train can learn *which abstracts tend to be relevant*
instead of *what makes an abstract relevant to a claim*, and the test figure on all claims rewards both. So a
trained model is reported three ways, beside BM25 and the zero-shot model on the same columns:

    all      every test claim (comparable with published figures, which are zero-shot)
    unseen   the test claims none of whose relevant documents a training claim cites (``split_seen``)
    CACM     computer-science abstracts (``out_of_domain``): never trained on, never used to choose a setting

Choices (early stopping, a fusion weight, a sweep) are made on validation claims carved from train *by
document* (``split_validation_by_document``): no validation claim's relevant document is cited by a claim left
in train, so validation rewards what generalizes, not what was memorised.

>>> from xencoder_lab.data import TOY_PATH, load_beir
>>> train, test = load_beir("toy", "train", path=TOY_PATH), load_beir("toy", "test", path=TOY_PATH)
>>> seen, unseen = split_seen(test, train)
>>> len(seen.queries), len(unseen.queries)    # the toy's two training claims cite no test claim's answer
(0, 6)
"""

from __future__ import annotations

import random
from typing import Callable, Mapping

from . import metrics
from .data import Dataset, load_beir

OUT_OF_DOMAIN = "cacm"  # a BEIR-format folder found like any dataset (XLAB_DATA, the cache, a path)


def _subset(ds: Dataset, qids, split: str) -> Dataset:
    keep = set(qids)
    qids = [q for q in ds.qrels if q in keep]
    return Dataset(ds.name, split, ds.corpus, {q: ds.queries[q] for q in qids}, {q: ds.qrels[q] for q in qids}, ds.path)


def relevant_documents(ds: Dataset) -> set[str]:
    """Every document judged relevant (grade > 0) for some query of ``ds``.

    Args:
        ds: the dataset (split) whose qrels to read.

    Returns:
        a set of doc ids.
    """
    return {d for judged in ds.qrels.values() for d, grade in judged.items() if grade > 0}


def split_seen(test: Dataset, train: Dataset) -> tuple[Dataset, Dataset]:
    """``(seen, unseen)``: the test queries with at least one relevant document that a query of ``train`` also
    has as relevant, and the others, whose answers training never showed.

    Args:
        test: the split to divide.
        train: the split the model was trained on.

    Returns:
        ``(seen, unseen)`` Datasets, split names ``<split>-seen`` and ``<split>-unseen``.
    """
    cited = relevant_documents(train)
    seen = [q for q, judged in test.qrels.items() if any(g > 0 and d in cited for d, g in judged.items())]
    unseen = set(test.qrels) - set(seen)
    return _subset(test, seen, f"{test.split}-seen"), _subset(test, unseen, f"{test.split}-unseen")


def split_validation_by_document(ds: Dataset, n: int = 80, seed: int = 0) -> tuple[Dataset, Dataset]:
    """``(rest, validation)``: about ``n`` queries of ``ds`` held out so that none of their relevant documents
    is relevant to a query left in ``rest``.

    Queries that share a relevant document form a group (connected components); whole groups, drawn in a
    seeded order, go to validation until it holds at least ``n`` queries.

    Args:
        ds: the split to carve from (normally train).
        n: the least number of validation queries, 0 < n < the split's queries.
        seed: seed of the groups' order.

    Returns:
        ``(rest, validation)`` Datasets, split names ``ds.split`` and ``ds.split + "-validation"``.

    Raises:
        ValueError: ``n`` out of range, or the groups too large to leave any query in ``rest``.

    >>> from xencoder_lab.data import TOY_PATH, load_beir
    >>> rest, val = split_validation_by_document(load_beir("toy", path=TOY_PATH), n=2)
    >>> len(val.queries) >= 2 and not relevant_documents(rest) & relevant_documents(val)
    True
    """
    if not 0 < n < len(ds.qrels):
        raise ValueError(f"n={n} but the split has {len(ds.qrels)} queries: use 0 < n < {len(ds.qrels)}.")
    parent = {q: q for q in ds.qrels}

    def root(q: str) -> str:
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    owner: dict[str, str] = {}  # document -> a query it is relevant to
    for q, judged in ds.qrels.items():
        for d, grade in judged.items():
            if grade > 0:
                if d in owner:
                    parent[root(q)] = root(owner[d])
                owner.setdefault(d, q)
    groups: dict[str, list[str]] = {}
    for q in ds.qrels:
        groups.setdefault(root(q), []).append(q)
    order = sorted(groups.values())
    random.Random(seed).shuffle(order)
    held: list[str] = []
    for group in order:
        if len(held) >= n:
            break
        held += group
    if len(held) >= len(ds.qrels):
        raise ValueError(f"the queries of {ds.name} share their documents too much to hold out {n} by document.")
    rest = set(ds.qrels) - set(held)
    return _subset(ds, rest, ds.split), _subset(ds, held, f"{ds.split}-validation")


def columns(test: Dataset, train: Dataset, out_of_domain: Dataset | None = None) -> dict[str, Dataset]:
    """The datasets of the three columns: ``{"all": test, "unseen": ..., "CACM": ...}`` (the out-of-domain set
    is loaded like any dataset unless given).

    Args:
        test: SciFact's test split (the ``"all"`` column).
        train: the training split, to find the unseen test queries.
        out_of_domain: the ``"CACM"`` column; None: ``load_beir(OUT_OF_DOMAIN, "test")``.

    Returns:
        ``{"all": Dataset, "unseen": Dataset, "CACM": Dataset}``.
    """
    out_of_domain = out_of_domain or load_beir(OUT_OF_DOMAIN, "test")
    return {"all": test, "unseen": split_seen(test, train)[1], "CACM": out_of_domain}


def depth_for(depth: int | Mapping[str, int], name: str) -> int:
    """The rerank depth of the system ``name``: ``depth`` itself, or ``depth[name]`` from a per-system mapping
    (a ``collections.defaultdict`` gives every system not named a default).

    Args:
        depth: one depth for every system, or ``{system name: depth}``.
        name: the system's name.

    Returns:
        the depth.

    Raises:
        ValueError: a mapping without ``name``.

    >>> from collections import defaultdict
    >>> depth_for(100, "BM25"), depth_for(defaultdict(lambda: 100, {"int8": 10}), "int8")
    (100, 10)
    """
    if not isinstance(depth, Mapping):
        return depth
    try:
        return depth[name]
    except KeyError:
        raise ValueError(f"no depth for {name!r}: give every system one (a collections.defaultdict gives "
                         "a default).") from None


def evaluate_systems(
    build: Callable[[Dataset], Mapping[str, object]],
    columns: Mapping[str, Dataset],
    depth: int | Mapping[str, int] = 100,
    metric: str = "ndcg@10",
) -> tuple[dict[str, dict[str, object]], dict[str, dict[str, dict[str, list[str]]]], dict[str, dict[str, float]]]:
    """Every system on every column: ``(built, runs, scores)``. ``build(ds)`` makes every named system over one
    column's corpus (e.g. ``lambda ds: {"BM25": Pipeline(ds, "bm25"), ...}``); each ``run`` ranks every query,
    the first stage's top 100 (the whole corpus, if smaller) with its top ``depth`` reranked.

    The systems are built once per corpus: a column whose queries another column over the same corpus object
    holds (``"unseen"`` in ``"all"``: ``split_seen`` keeps the corpus) takes its rankings from that column's run,
    without a build or a run of its own. Each query is ranked alone, so the rankings are those a build over the
    column itself gives (to float32 noise where a model reads queries or pairs in padded batches).

    Args:
        build: makes ``{system name: system}`` over one dataset; a system needs ``run(depth=, k=, show_progress=)``.
        columns: ``{column: Dataset}`` (see ``columns``).
        depth: the rerank depth, documents reranked per query (fewer when a corpus is smaller): one for every
            system, or ``{system name: depth}`` (``depth_for``).
        metric: e.g. ``"ndcg@10"``.

    Returns:
        ``(built, runs, scores)``: ``{column: {system name: system}}`` for each column built over (in the order
        of ``columns``), ``{system name: {column: {query id: [doc ids]}}}`` and ``{system name: {column: metric
        value}}``.

    >>> from xencoder_lab.data import TOY_PATH, load_beir
    >>> from xencoder_lab.pipeline import Pipeline
    >>> toy = load_beir("toy", path=TOY_PATH)
    >>> two = {"all": toy, "held out": split_validation_by_document(toy, n=2)[1]}   # one corpus
    >>> built, runs, scores = evaluate_systems(lambda ds: {"BM25": Pipeline(ds, "bm25")}, two)
    >>> list(built), len(runs["BM25"]["held out"]) >= 2, round(scores["BM25"]["all"], 3) > 0.5
    (['all'], True, True)
    """
    built, source = {}, {}  # source: {column: the built column whose run holds its queries}
    for column in sorted(columns, key=lambda c: -len(columns[c].queries)):  # a covering column comes first
        ds = columns[column]
        source[column] = next((b for b in built if columns[b].corpus is ds.corpus
                               and ds.queries.items() <= columns[b].queries.items()), column)
        if source[column] == column:
            built[column] = build(ds)
    built = {column: built[column] for column in columns if column in built}
    full = {}  # {(system name, built column): run}
    for column, systems in built.items():
        ranked = min(100, len(columns[column].corpus))  # a toy corpus holds fewer
        for name, system in systems.items():
            full[name, column] = system.run(depth=min(depth_for(depth, name), ranked), k=ranked, show_progress=False)
    runs: dict[str, dict[str, dict[str, list[str]]]] = {}
    for column, ds in columns.items():
        for name in built[source[column]]:
            run = full[name, source[column]]
            runs.setdefault(name, {})[column] = run if source[column] == column else {q: run[q] for q in ds.queries}
    scores = {name: {column: metrics.evaluate(run, columns[column].qrels, [metric])[metric]
                     for column, run in by_column.items()} for name, by_column in runs.items()}
    return built, runs, scores


def evaluate_columns(
    system: Callable[[Dataset], object], columns: Mapping[str, Dataset], depth: int = 100, metric: str = "ndcg@10"
) -> tuple[dict[str, dict[str, list[str]]], dict[str, float]]:
    """One system on every column: ``(runs, scores)``, each ``{column: ...}`` (``evaluate_systems`` with one
    system: built once per corpus). ``system(ds)`` builds it over a column's corpus (e.g. ``lambda ds:
    Pipeline(ds, model, reranker)``: its ``run`` ranks every query, the first stage's top 100 (the whole corpus,
    if smaller) with its top ``depth`` reranked); ``scores`` holds ``metric`` per column.

    Args:
        system: builds the system over one column's dataset; it needs ``run(depth=, k=, show_progress=)``.
        columns: ``{column: Dataset}`` (see ``columns``).
        depth: the rerank depth: documents reranked per query (fewer when a corpus is smaller).
        metric: e.g. ``"ndcg@10"``.

    Returns:
        ``(runs, scores)``: ``{column: {query id: [doc ids]}}`` and ``{column: metric value}``.

    >>> from xencoder_lab.data import TOY_PATH, load_beir
    >>> from xencoder_lab.pipeline import Pipeline
    >>> toy = {"all": load_beir("toy", path=TOY_PATH)}
    >>> runs, scores = evaluate_columns(lambda ds: Pipeline(ds, "bm25"), toy)
    >>> round(scores["all"], 3) > 0.5
    True
    """
    _, runs, scores = evaluate_systems(lambda ds: {"system": system(ds)}, columns, depth, metric)
    return runs.get("system", {}), scores.get("system", {})


def show(rows: Mapping[str, Mapping[str, float]], columns: Mapping[str, Dataset], title: str = "nDCG@10") -> None:
    """Print ``{system: {column: value}}`` as a table, one column per dataset with its query count.

    Args:
        rows: ``{system: {column: value}}``; a missing column prints ``-``.
        columns: ``{column: Dataset}``, in the order to print.
        title: the table's first header cell.

    >>> from xencoder_lab.data import TOY_PATH, load_beir
    >>> show({"BM25": {"all": 0.5}}, {"all": load_beir("toy", path=TOY_PATH)})
    nDCG@10                                              all (6)
    BM25                                                   0.500
    """
    print(f"{title:48}" + "".join(f"{f'{name} ({len(ds.queries)})':>13}" for name, ds in columns.items()))
    for name, values in rows.items():
        print(f"{name:48}" + "".join(f"{values[c]:13.3f}" if c in values else f"{'-':>13}" for c in columns))
