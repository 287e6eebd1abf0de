"""The ``xencoder-lab`` command: the course's systems on any BEIR-format dataset (notebook 09).

    xencoder-lab evaluate --data scifact --systems bm25,bi,bi+ce     quality and latency of each system
    xencoder-lab search --data scifact --system bi+ce "a query"      one query's two-stage result, timed
    xencoder-lab index --data scifact --system bi --out FOLDER       a first-stage index, saved
    xencoder-lab train bi-encoder                                    a course checkpoint (recipes)
    xencoder-lab bench encode                                        a benchmark (from a clone of the repository)

A system is a first stage, optionally ``+`` a reranker, optionally ``@a`` to fuse the two stages' scores
(``pipeline.fuse``): ``bm25``, ``zero-shot``, ``bi``, ``distilled``, ``poly``, ``colbert``, ``hybrid`` (BM25 and
``bi`` fused at equal weight, ``hybrid.Hybrid``); rerankers ``ce`` and ``small-ce``; e.g. ``hybrid+ce@0.2``.
Course checkpoints are checked against the current code before use; the results the course ships beside them (SciFact's
corpus embeddings, the cross-encoders' logits for SciFact's and CACM's top 100) are checked against the model and put
into the disk cache, so the first run on those datasets does not compute them again. Progress goes to stderr, results
to stdout.
Errors print one line, what went wrong and how to fix it, and exit with status 1 (2 for a usage error).
"""

from __future__ import annotations

import argparse
import json
import runpy
import statistics
import sys
from pathlib import Path

from tqdm import tqdm

from . import checkpoints, corpus_embeddings, metrics, pair_scores, recipes
from .bi_encoder import BiEncoder
from .cross_encoder import CrossEncoder
from .data import Dataset, DatasetFormatError, DatasetNotFoundError, load_beir
from .hybrid import Hybrid
from .models import DEFAULT_MODEL, ModelNotFoundError, model_fingerprint
from .pipeline import Pipeline
from .retrieval import DenseRetriever, DenseSearcher

FIRST_STAGES = {"bm25": None, "zero-shot": None, "bi": "bi-encoder", "distilled": "distilled-bi-encoder",
                "poly": "poly-encoder", "colbert": "colbert", "hybrid": "bi-encoder"}
RERANKERS = {"ce": "cross-encoder", "small-ce": "small-cross-encoder"}
DENSE = ("zero-shot", "bi", "distilled")  # the first stages an index holds (one vector per document)
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


class UsageError(ValueError):
    """A command line that names something that does not exist (exit status 2)."""


def parse_system(spec: str) -> tuple[str, str | None, float | None]:
    """``"bm25+ce@0.5"`` -> ``("bm25", "ce", 0.5)``: first stage, reranker, fusion weight.

    >>> parse_system("bi+small-ce"), parse_system("colbert")
    (('bi', 'small-ce', None), ('colbert', None, None))
    """
    first, _, rest = spec.strip().partition("+")
    reranker, _, weight = rest.partition("@")
    if first not in FIRST_STAGES:
        raise UsageError(f"unknown first stage {first!r} in {spec!r}: use one of {', '.join(FIRST_STAGES)}.")
    if rest and reranker not in RERANKERS:
        raise UsageError(f"unknown reranker {reranker!r} in {spec!r}: use one of {', '.join(RERANKERS)}.")
    try:
        fusion = float(weight) if weight else None
    except ValueError:
        raise UsageError(f"{spec!r}: the fusion weight after @ must be a number in [0, 1], e.g. bm25+ce@0.5.") from None
    return first, reranker or None, fusion


def load_dataset(data: str, split: str) -> Dataset:
    """A dataset by name (``XLAB_DATA``, the user cache, then the public BEIR download) or by folder."""
    path = Path(data).expanduser()
    if path.is_dir():
        return load_beir(path.name, split, path=path)
    if any(sep in data for sep in ("/", "\\")) or data.startswith("."):
        raise DatasetNotFoundError(f"no folder {data}: give a BEIR-format folder (corpus.jsonl, queries.jsonl, "
                                   "qrels/) or a dataset name such as scifact.")
    return load_beir(data, split)


def progress(message: str) -> None:
    """One line on stderr saying what a slow step is doing (``tqdm.write``: it keeps a running bar intact); stdout
    holds the results, which scripts parse."""
    tqdm.write(f"{message} ...", file=sys.stderr)


class Systems:
    """Builds the pipelines the command runs, loading each model once and checking each course checkpoint."""

    def __init__(self):
        self.models, self.installed = {}, set()

    def model(self, name: str, ds: Dataset | None = None):
        """The model of a first stage or reranker (``FIRST_STAGES``, ``RERANKERS`` values, or ``"zero-shot"``); with
        ``ds``, the course's shipped results for it on ``ds``, if any, are installed first (``install_shipped``)."""
        if name not in self.models:
            if name == "zero-shot":
                progress(f"loading the zero-shot model ({DEFAULT_MODEL})")
                self.models[name] = BiEncoder()
            else:
                progress(f"loading {name} (checking the checkpoint)")
                recipes.verify(name, training=False)  # raises StaleCheckpointError, saying how to retrain
                self.models[name] = recipes.load(name)
        if ds is not None and (name, ds.name, ds.split) not in self.installed:
            self.installed.add((name, ds.name, ds.split))
            self.install_shipped(name, self.models[name], ds)
        return self.models[name]

    def install_shipped(self, name: str, model, ds: Dataset) -> bool:
        """Put what the course ships for ``model`` on ``ds`` into the disk cache, as notebooks 03-05 do: SciFact's
        corpus embeddings beside the bi-encoder checkpoint (``corpus_embeddings``: the zero-shot document tower, which
        the distilled bi-encoder shares, and the fine-tuned one), or the logits beside a cross-encoder checkpoint
        (``pair_scores``: BM25's and the bi-encoder's top 100 on SciFact test and CACM). The file's own ``check``
        matches it to this model (weights' fingerprint, settings, corpus) and recomputes 8 rows before its
        ``install`` copies it. A dataset the file does not hold costs one read of the file and prints nothing; a
        file that is not this model's is left out with a note. Return whether anything was installed."""
        shipped = self._shipped(name, model, ds)
        if shipped is None:
            return False
        what, check, install, tolerance = shipped
        progress(f"checking the {what} against {name}")
        try:
            largest = check()["largest difference"]
        except (ValueError, FileNotFoundError) as err:  # another model, corpus or settings; a dataset not at hand
            progress(f"not using the {what} ({str(err).split(': ')[0]}); computing instead")
            return False
        if not largest < tolerance:
            progress(f"not using the {what}: {name} recomputes them {largest:.1e} apart; computing instead")
            return False
        progress(f"installing the {what} into the disk cache")
        install()
        return True

    @staticmethod
    def _shipped(name: str, model, ds: Dataset):
        """``(what, check, install, tolerance)`` for the file the course ships for ``model`` that holds results
        on ``ds``, or None. The tolerances are the notebooks' (03: embeddings, 05: logits)."""
        if isinstance(model, CrossEncoder):
            path = checkpoints.CHECKPOINTS / name / pair_scores.PATH.name
            if not path.is_file():
                return None
            arrays = pair_scores.load(path)[1]
            if not ((arrays["dataset"] == ds.name) & (arrays["split"] == ds.split)).any():
                return None
            return (f"shipped {name} logits ({ds.name} {ds.split})", lambda: pair_scores.check(model, n=8, path=path),
                    lambda: pair_scores.install(model, path), 1e-3)
        if isinstance(model, BiEncoder) and not hasattr(model, "searcher"):  # a DenseSearcher's model
            path = checkpoints.CHECKPOINTS / "bi-encoder" / corpus_embeddings.PATH.name
            if not path.is_file():
                return None
            if ds.name not in {entry["dataset"] for entry in corpus_embeddings.load(path)[0]["entries"].values()}:
                return None
            return (f"shipped corpus embeddings ({ds.name})",
                    lambda: corpus_embeddings.check(model, ds, n=8, path=path),
                    lambda: corpus_embeddings.install(model, ds, path), 1e-4)
        return None

    def pipeline(self, ds: Dataset, spec: str, first_stage=None) -> Pipeline:
        first, reranker, fusion = parse_system(spec)
        if first_stage is None and first == "hybrid":
            first_stage = Hybrid.over(ds, self.model(FIRST_STAGES[first], ds))
        elif first_stage is None:
            first_stage = "bm25" if first == "bm25" else self.model(FIRST_STAGES[first] or first, ds)
        second_stage = self.model(RERANKERS[reranker], ds) if reranker else None
        progress(f"indexing {ds.name}'s {len(ds.corpus)} documents for {spec}")
        return Pipeline(ds, first_stage, second_stage, fusion)


def evaluate(args) -> None:
    ds = load_dataset(args.data, args.split)
    systems, names = Systems(), [s.strip() for s in args.systems.split(",") if s.strip()]
    for name in names:
        parse_system(name)  # every name checked before the first slow step
    metric_names = [m.strip() for m in args.metrics.split(",")]
    metrics.evaluate({}, {"q": {"d": 1}}, metric_names)  # an unknown metric fails now, not after an hour
    depth = min(100, len(ds.corpus))
    print(f"{ds.name} {ds.split}: {len(ds.queries)} queries, {len(ds.corpus)} documents; first stage top {depth}, "
          f"reranked top {min(args.k1, depth)}")
    rows = {}
    for name in names:
        pipeline = systems.pipeline(ds, name)
        run = pipeline.run(k1=min(args.k1, depth), k=depth)
        rows[name] = metrics.evaluate(run, ds.qrels, metric_names)
        if args.latency_queries:
            timed = list(ds.queries.values())[: args.latency_queries]
            seconds = pipeline.stage_seconds(timed, k1=min(args.k1, depth), k2=min(10, depth))
            rows[name]["ms/query"] = 1000 * statistics.median(sum(s) for s in zip(*seconds.values()))
    columns = metric_names + (["ms/query"] if args.latency_queries else [])
    print(f"{'system':24}" + "".join(f"{c:>12}" for c in columns))
    for name, values in rows.items():
        print(f"{name:24}" + "".join(f"{values[c]:12.1f}" if c == "ms/query" else f"{values[c]:12.3f}"
                                     for c in columns))
    if args.latency_queries:
        print(f"ms/query: median over the first {min(args.latency_queries, len(ds.queries))} queries, "
              "each searched alone (both stages)")


def search(args) -> None:
    ds = load_dataset(args.data, args.split)
    systems, spec, first_stage = Systems(), args.system, None
    if args.index:  # the saved index is the first stage; --system may add a reranker to it
        meta_file = Path(args.index) / "index.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{args.index} holds no index.json: give a folder `xencoder-lab index` wrote.")
        meta = json.loads(meta_file.read_text())
        model = systems.model(FIRST_STAGES[meta["system"]] or meta["system"])
        if meta["model"] != model_fingerprint(model.doc_tower):
            raise ValueError(f"{args.index} was built by another {meta['system']} model than the one installed now: "
                             f"build it again with `xencoder-lab index --system {meta['system']} --overwrite`.")
        rest = args.system.partition("+")[2]
        spec = meta["system"] + (f"+{rest}" if rest else "")
        first_stage = DenseSearcher(model, ds, store=DenseRetriever.load(args.index))
    result = systems.pipeline(ds, spec, first_stage).search(args.query, k1=min(args.k1, len(ds.corpus)),
                                                             k2=min(args.k, len(ds.corpus)))
    timing = ", ".join(f"{stage} {1000 * s:.0f} ms" for stage, s in result.seconds.items())
    print(f"{spec} on {ds.name}: {timing}")
    for rank, (doc_id, score) in enumerate(zip(result.ids, result.scores), 1):
        doc = ds.corpus[doc_id]
        text = " ".join((doc.get("title") or doc.get("text") or "(empty document)").split())
        print(f"{rank:3}  {score:9.3f}  {doc_id:>12}  {text[:80]}")


def index(args) -> None:
    if args.system not in DENSE:
        raise UsageError(f"index holds one vector per document: use --system {' or '.join(DENSE)} "
                         f"({args.system} builds its own in memory).")
    ds = load_dataset(args.data, args.split)
    model = Systems().model(FIRST_STAGES[args.system] or args.system)
    searcher = DenseSearcher(model, ds, index=args.index)
    try:
        out = searcher.index.save(args.out, overwrite=args.overwrite)
    except FileExistsError:
        raise FileExistsError(f"{args.out} holds a different saved index: pass --overwrite to replace it, or "
                              "choose another --out.") from None
    meta = {"system": args.system, "data": args.data, "documents": len(ds.corpus), "index": args.index,
            "model": model_fingerprint(model.doc_tower)}
    (out / "index.json").write_text(json.dumps(meta, indent=1))
    print(f"wrote {out}: {args.index} index of {len(ds.corpus)} documents, "
          f"{searcher.index.bytes_per_vector():.0f} bytes a vector")


def bench(args) -> None:
    found = sorted(p.stem for p in BENCHMARKS.glob("*.py") if "def main" in p.read_text())
    if not found:
        raise FileNotFoundError("the benchmarks live in the repository, not in the installed package: clone "
                                "xencoder-lab and run this command there.")
    if args.name not in found:
        raise UsageError(f"unknown benchmark {args.name!r}: use one of {', '.join(found)}.")
    sys.argv = [str(BENCHMARKS / f"{args.name}.py"), *args.rest]
    runpy.run_path(sys.argv[0], run_name="__main__")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="xencoder-lab", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    def with_data(command):
        command.add_argument("--data", required=True, help="dataset name (scifact, cacm, ...) or BEIR-format folder")
        command.add_argument("--split", default="test", help="qrels split (default: test)")
        return command

    ev = with_data(commands.add_parser("evaluate", help="compare systems on a dataset: quality and latency"))
    ev.add_argument("--systems", default="bm25,zero-shot,bi", help="comma-separated, e.g. bm25,bi,bi+ce,bm25+ce@0.5")
    ev.add_argument("--metrics", default="ndcg@10,mrr@10,recall@100", help="comma-separated metric@k")
    ev.add_argument("--k1", type=int, default=100, help="candidates a reranker reads (default: 100)")
    ev.add_argument("--latency-queries", type=int, default=10, help="queries timed one at a time (0: none)")
    ev.set_defaults(run=evaluate)

    se = with_data(commands.add_parser("search", help="one query through a system, with stage timings"))
    se.add_argument("query")
    se.add_argument("--system", default="bi+ce", help="as in evaluate (default: bi+ce)")
    se.add_argument("--index", help="a folder written by `xencoder-lab index` to use as the first stage")
    se.add_argument("--k1", type=int, default=100)
    se.add_argument("--k", type=int, default=10, help="results shown")
    se.set_defaults(run=search)

    ix = with_data(commands.add_parser("index", help="build and save a dense first stage's index"))
    ix.add_argument("--system", default="bi", choices=DENSE)
    ix.add_argument("--index", default="Flat", help="a FAISS index_factory key: Flat, HNSW32, IVF256,Flat, ...")
    ix.add_argument("--out", required=True, help="folder to write index.faiss, ids.json and index.json")
    ix.add_argument("--overwrite", action="store_true", help="replace a different index saved there")
    ix.set_defaults(run=index)

    tr = commands.add_parser("train", help="train a course checkpoint (python -m xencoder_lab.recipes --help)",
                             add_help=False)
    tr.add_argument("rest", nargs=argparse.REMAINDER)
    tr.set_defaults(run=lambda args: recipes.main(args.rest))

    be = commands.add_parser("bench", help="run a benchmark of the repository's benchmarks/")
    be.add_argument("name", help="encode, rerank, cache or ann")
    be.add_argument("rest", nargs=argparse.REMAINDER, help="its own options (bench NAME --help)")
    be.set_defaults(run=bench)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; return the exit status (0, 1 for an error, 2 for a usage error)."""
    command = parser()
    args = command.parse_args(argv)
    try:
        args.run(args)
    except UsageError as err:
        command.print_usage(sys.stderr)
        print(f"xencoder-lab: error: {err}", file=sys.stderr)
        return 2
    except (DatasetNotFoundError, DatasetFormatError, ModelNotFoundError, recipes.StaleCheckpointError,
            FileExistsError, FileNotFoundError, ValueError, LookupError, ImportError) as err:
        print(f"xencoder-lab: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
