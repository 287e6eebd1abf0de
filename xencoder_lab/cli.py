"""The ``xencoder-lab`` command: the course's systems on any BEIR-format dataset (notebook 09).

    xencoder-lab evaluate --data scifact --systems bm25,bi,bi+ce     quality and latency of each system
    xencoder-lab search --data scifact --system bi+ce "a query"      one query's two-stage result, timed
    xencoder-lab index --data scifact --system bi --out FOLDER       a first-stage index, saved
    xencoder-lab train bi-encoder                                    a course checkpoint (recipes)
    xencoder-lab bench encode                                        a benchmark (from a clone of the repository)

A system is a first stage, optionally ``+`` a reranker, optionally ``@a`` to fuse the two stages' scores
(``pipeline.fuse``): ``bm25``, ``zero-shot``, ``bi``, ``distilled``, ``poly``, ``colbert``, ``hybrid`` (BM25 and
``bi`` fused at equal weight, each list's scores standardised: z-score, ``hybrid.Hybrid``; ``hybrid-min-max`` and
``hybrid-rrf`` fuse them by min-max or reciprocal rank instead); rerankers ``ce`` and ``small-ce``; e.g.
``hybrid+ce@0.2``.
Course checkpoints are checked against the current code before use, a saved index against the corpus and model
it was built from; the results the course ships beside the checkpoints (SciFact's corpus embeddings, the
cross-encoders' logits for SciFact's and CACM's top 100) are checked against the model and put into the disk cache,
so the first run on those datasets does not compute them again. Every argument and the dataset are checked before
the first slow step, and ``evaluate`` prints each system's row as soon as it is measured. Progress goes to stderr,
results to stdout. Errors print one line, what went wrong and how to fix it, and exit with status 1 (2 for a usage
error, 130 when interrupted); ``xencoder-lab --debug COMMAND`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import runpy
import statistics
import sys
import warnings
from pathlib import Path

from tqdm import tqdm

from . import checkpoints, corpus_embeddings, course_models, metrics, pair_scores
from .bi_encoder import BiEncoder, corpus_cache_parts
from .cross_encoder import CrossEncoder
from .data import Dataset, DatasetFormatError, DatasetNotFoundError, load_beir
from .faiss_index import make_index
from .hybrid import Hybrid
from .models import DEFAULT_MODEL, ModelNotFoundError
from .pipeline import Pipeline
from .poly_encoder import PolyEncoder
from .retrieval import DenseRetriever, DenseSearcher

FIRST_STAGES = {"bm25": None, "zero-shot": None, "bi": "bi-encoder", "distilled": "distilled-bi-encoder",
                "poly": "poly-encoder", "colbert": "colbert", "hybrid": "bi-encoder", "hybrid-min-max": "bi-encoder",
                "hybrid-rrf": "bi-encoder"}
HYBRIDS = {"hybrid": "z-score", "hybrid-min-max": "min-max", "hybrid-rrf": "rrf"}  # BM25 + bi at b = 0.5 (README)
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
    first, plus, rest = spec.strip().partition("+")
    reranker, at, weight = rest.partition("@")
    if first not in FIRST_STAGES:
        raise UsageError(f"unknown first stage {first!r} in {spec!r}: use one of {', '.join(FIRST_STAGES)}.")
    if plus and reranker not in RERANKERS:
        raise UsageError(f"unknown reranker {reranker!r} in {spec!r}: use one of {', '.join(RERANKERS)}.")
    try:
        fusion = float(weight) if at else None
        if fusion is not None and not 0 <= fusion <= 1:
            raise ValueError
    except ValueError:
        raise UsageError(f"{spec!r}: the fusion weight after @ must be a number in [0, 1], e.g. bm25+ce@0.5.") from None
    return first, reranker or None, fusion


def system_names(text: str) -> list[str]:
    """The systems of ``--systems``, each checked (``parse_system``), none twice, at least one.

    >>> system_names("bm25, bi+ce@0.5")
    ['bm25', 'bi+ce@0.5']
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--systems {text!r} names no system: e.g. --systems bm25,bi,bi+ce.")
    for name in names:
        parse_system(name)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"--systems lists {', '.join(repeated)} more than once: name each system once.")
    return names


def at_least(low: int):
    """An argparse type: a whole number >= ``low``, else a usage error saying so."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}: give a whole number >= {low}")
        return value

    return whole_number


def load_dataset(data: str, split: str) -> Dataset:
    """A dataset by name (``XLAB_DATA``, the user cache, then the public BEIR download) or by folder."""
    path = Path(data).expanduser()
    if path.is_dir():
        return load_beir(path.name, split, path=path)
    if any(sep in data for sep in ("/", "\\")) or data.startswith("."):
        raise DatasetNotFoundError(f"no folder {data}: give a BEIR-format folder (corpus.jsonl, queries.jsonl, "
                                   "qrels/) or a dataset name such as scifact.")
    return load_beir(data, split)


def check_queries(ds: Dataset) -> None:
    """Refuse a dataset whose judged queries include an empty one, naming it (before anything is encoded)."""
    empty = [qid for qid, text in ds.queries.items() if not text.strip()]
    if empty:
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise DatasetFormatError(f"{ds.path / 'queries.jsonl'}: query {empty[0]!r}{more} is empty: give it a text, or "
                                 f"remove its judgments from qrels/{ds.split}.tsv.")


def index_source(model, ds: Dataset) -> dict:
    """What a saved index is built from: the model's weight fingerprint, its settings (max_length, pooling...) and a
    digest of the corpus's ids and texts in order (``bi_encoder.corpus_cache_parts``, less the dataset's name)."""
    return {key: value for key, value in corpus_cache_parts(model, ds).items() if key != "dataset"}


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
                course_models.verify(name)  # raises StaleCheckpointError, saying how to retrain
                self.models[name] = course_models.load(name)
        if ds is not None and (name, ds.name, ds.split) not in self.installed:
            self.installed.add((name, ds.name, ds.split))
            self.install_shipped(name, self.models[name], ds)
        return self.models[name]

    def install_shipped(self, name: str, model, ds: Dataset) -> bool:
        """Put what the course ships for ``model`` on ``ds`` into the disk cache, as notebooks 03-09 do: SciFact's
        and CACM's corpus embeddings beside the bi-encoder checkpoint (``corpus_embeddings``: the zero-shot document
        tower, which the distilled bi-encoder shares, and the fine-tuned one) and beside the poly-encoder's, or the
        logits beside a cross-encoder checkpoint (``pair_scores``: BM25's and the bi-encoder's top 100 on SciFact
        test and CACM). The file's own ``check``
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
        if isinstance(model, PolyEncoder) or (isinstance(model, BiEncoder) and not hasattr(model, "searcher")):
            path = corpus_embeddings.shipped_path(model)  # beside the bi-encoder's checkpoint or the poly-encoder's
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
        if first_stage is None and first in HYBRIDS:
            first_stage = Hybrid.over(ds, self.model(FIRST_STAGES[first], ds), weight=0.5, fusion=HYBRIDS[first])
        elif first_stage is None:
            first_stage = "bm25" if first == "bm25" else self.model(FIRST_STAGES[first] or first, ds)
        second_stage = self.model(RERANKERS[reranker], ds) if reranker else None
        progress(f"indexing {ds.name}'s {len(ds.corpus)} documents for {spec}")
        return Pipeline(ds, first_stage, second_stage, fusion)


def evaluate(args) -> None:
    names = system_names(args.systems)  # every argument and the dataset checked before the first slow step
    metric_names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not metric_names:
        raise UsageError(f"--metrics {args.metrics!r} names no metric: e.g. --metrics ndcg@10,recall@100.")
    metrics.evaluate({}, {"q": {"d": 1}}, metric_names)  # an unknown metric fails now, not after an hour
    ds = load_dataset(args.data, args.split)
    check_queries(ds)
    ranked = min(100, len(ds.corpus))
    depth = min(args.depth, ranked)
    k = min(10, depth)  # the results a timed search returns
    reranks = f"; a reranker reads its top {depth}" if any(parse_system(name)[1] for name in names) else ""
    print(f"{ds.name} {ds.split}: {len(ds.queries)} queries, {len(ds.corpus)} documents; first stage top {ranked}"
          + reranks)
    timed = list(ds.queries.values())[: args.latency_queries]
    if timed:
        print(f"ms/query: median over the first {len(timed)} queries, each searched alone for its top {k} "
              "(both stages)")
    columns = metric_names + (["ms/query"] if timed else [])
    print(f"{'system':24}" + "".join(f"{c:>12}" for c in columns), flush=True)
    systems = Systems()
    for name in names:  # each row printed once measured: a later failure loses none
        pipeline = systems.pipeline(ds, name)
        values = metrics.evaluate(pipeline.run(depth=depth, k=ranked), ds.qrels, metric_names)
        if timed:
            seconds = pipeline.stage_seconds(timed, depth=depth, k=k)
            values["ms/query"] = 1000 * statistics.median(sum(s) for s in zip(*seconds.values()))
        print(f"{name:24}" + "".join(f"{values[c]:12.1f}" if c == "ms/query" else f"{values[c]:12.3f}"
                                     for c in columns), flush=True)


def search(args) -> None:
    if not args.query.strip():
        raise UsageError("the query is empty: give a query with at least one word.")
    if args.k > args.depth:
        raise UsageError(f"--k {args.k} is more than --depth {args.depth}: a system shows at most the --depth "
                         "documents its first stage finds; raise --depth or lower --k.")
    parse_system(args.system)
    ds = load_dataset(args.data, args.split)
    systems, spec, first_stage = Systems(), args.system, None
    if args.index:  # the saved index is the first stage; --system may add a reranker to it
        system, first_stage = open_index(args, ds, systems)
        rest = args.system.partition("+")[2]
        spec = system + (f"+{rest}" if rest else "")
    result = systems.pipeline(ds, spec, first_stage).search(args.query, depth=min(args.depth, len(ds.corpus)),
                                                             k=min(args.k, len(ds.corpus)))
    timing = ", ".join(f"{stage} {1000 * s:.0f} ms" for stage, s in result.seconds.items())
    print(f"{spec} on {ds.name}: {timing}")
    for rank, (doc_id, score) in enumerate(zip(result.ids, result.scores), 1):
        doc = ds.corpus[doc_id]
        text = " ".join((doc.get("title") or doc.get("text") or "(empty document)").split())
        print(f"{rank:3}  {score:9.3f}  {doc_id:>12}  {text[:80]}")


def open_index(args, ds: Dataset, systems: Systems) -> tuple[str, DenseSearcher]:
    """The first stage ``index`` saved in ``args.index`` and its system, after checking it was built from this
    corpus, by this model, with these settings (``index_source``); else an error saying how to rebuild it."""
    meta_file = Path(args.index) / "index.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{args.index} holds no index.json: give a folder `xencoder-lab index` wrote.")
    meta = json.loads(meta_file.read_text())
    model = systems.model(FIRST_STAGES[meta["system"]] or meta["system"])
    built, now = meta.get("built_from"), index_source(model, ds)
    if built != now:
        what = {"docs": f"the documents of {args.data} (ids or texts)",
                "model": f"the {meta['system']} model's weights"}
        changed = [what.get(key, f"the model's {key}") for key in sorted({**(built or {}), **now})
                   if (built or {}).get(key) != now.get(key)]
        why = (f"{', '.join(changed)} changed since it was built" if built else
               "it does not record what it was built from (an older xencoder-lab wrote it)")
        raise ValueError(f"{args.index} cannot serve this search: {why}; rebuild it with `xencoder-lab index --data "
                         f"{args.data} --system {meta['system']} --index {meta.get('index', 'Flat')} "
                         f"--out {args.index} --overwrite`.")
    return meta["system"], DenseSearcher(model, ds, store=DenseRetriever.load(args.index))


def index(args) -> None:
    if args.system not in DENSE:
        raise UsageError(f"index holds one vector per document: use --system {' or '.join(DENSE)} "
                         f"({args.system} builds its own in memory).")
    ds = load_dataset(args.data, args.split)
    model = Systems().model(FIRST_STAGES[args.system] or args.system, ds)  # the shipped embeddings, where they fit
    make_index(args.index, model.dim)  # a key FAISS cannot build fails now, before the corpus is encoded
    searcher = DenseSearcher(model, ds, index=args.index)
    try:
        out = searcher.index.save(args.out, overwrite=args.overwrite)
    except FileExistsError:
        raise FileExistsError(f"{args.out} holds a different saved index: pass --overwrite to replace it, or "
                              "choose another --out.") from None
    meta = {"system": args.system, "data": args.data, "documents": len(ds.corpus), "index": args.index,
            "built_from": index_source(model, ds)}
    (out / "index.json").write_text(json.dumps(meta, indent=1))
    print(f"wrote {out}: {args.index} index of {len(ds.corpus)} documents, "
          f"{searcher.index.bytes_per_vector():.0f} bytes a vector")


def _train(args) -> None:
    """``python -m xencoder_lab.recipes ARGS``: the training stack runs as its own command, so serving (this
    module's other commands) never imports it."""
    sys.argv = ["python -m xencoder_lab.recipes", *args.rest]
    runpy.run_module("xencoder_lab.recipes", run_name="__main__", alter_sys=True)


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
    top = argparse.ArgumentParser(prog="xencoder-lab", description=__doc__.split("\n\n")[0].replace("``", ""))
    top.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    commands = top.add_subparsers(dest="command", required=True)

    def with_data(command):
        command.add_argument("--data", required=True, help="dataset name (scifact, cacm, ...) or BEIR-format folder")
        command.add_argument("--split", default="test", help="qrels split (default: test)")
        return command

    ev = with_data(commands.add_parser("evaluate", help="compare systems on a dataset: quality and latency"))
    ev.add_argument("--systems", default="bm25,zero-shot,bi,hybrid",
                    help="comma-separated, e.g. bm25,bi,bi+ce,bm25+ce@0.5 (default: bm25,zero-shot,bi,hybrid)")
    ev.add_argument("--metrics", default="ndcg@10,mrr@10,recall@100", help="comma-separated metric@k")
    ev.add_argument("--depth", "--k1", dest="depth", type=at_least(1), default=100,
                    help="rerank depth: candidates a reranker reads (default: 100; --k1 is an alias)")
    ev.add_argument("--latency-queries", type=at_least(0), default=10, help="queries timed one at a time (0: none)")
    ev.set_defaults(run=evaluate)

    se = with_data(commands.add_parser("search", help="one query through a system, with stage timings"))
    se.add_argument("query")
    se.add_argument("--system", default="hybrid",
                    help="as in evaluate (default: hybrid, the system notebooks 05 and 09 measure to hold up off "
                         "SciFact's training data; bi+ce reranks with the cross-encoder)")
    se.add_argument("--index", help="a folder written by `xencoder-lab index` to use as the first stage")
    se.add_argument("--depth", "--k1", dest="depth", type=at_least(1), default=100,
                    help="rerank depth: candidates the first stage finds (default: 100; --k1 is an alias)")
    se.add_argument("--k", type=at_least(1), default=10, help="results shown (default: 10)")
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
    tr.set_defaults(run=_train)

    be = commands.add_parser("bench", help="run a benchmark of the repository's benchmarks/")
    be.add_argument("name", help="encode, rerank, cache or ann")
    be.add_argument("rest", nargs=argparse.REMAINDER, help="its own options (bench NAME --help)")
    be.set_defaults(run=bench)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; return the exit status (0, 1 for an error, 2 for a usage error, 130 when
    interrupted). Warnings print as one line each."""
    command = parser()
    try:
        args = command.parse_args(argv)
    except SystemExit as done:  # --help, or a usage error argparse has printed
        return done.code
    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            args.run(args)
        except UsageError as err:
            command.print_usage(sys.stderr)
            print(f"xencoder-lab: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            if args.debug:
                raise
            print("xencoder-lab: interrupted", file=sys.stderr)
            return 130
        except Exception as err:
            if args.debug:
                raise
            print(f"xencoder-lab: error: {error_line(err)}", file=sys.stderr)
            return 1
    return 0


def error_line(err: Exception) -> str:
    """An error as one line: its message when written for a user, else also its type and how to see the traceback.

    >>> error_line(ValueError("k must be\\n  positive.")), error_line(KeyError("d04"))
    ('k must be positive.', "KeyError: 'd04' (run `xencoder-lab --debug ...` to see the traceback)")
    """
    text = " ".join(str(err).split())
    written = (ValueError, OSError, ImportError, ModelNotFoundError, course_models.StaleCheckpointError)
    if text and isinstance(err, written):
        return text
    return f"{type(err).__name__}: {text} (run `xencoder-lab --debug ...` to see the traceback)"


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the command: one line, without the source line Python shows by default."""
    print(f"xencoder-lab: warning: {' '.join(str(message).split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
