"""Smoke test of an installed xencoder-lab: the code, both course checkpoints and the toy set, from the install alone.

``tests/test_install.py`` builds the wheel, installs it into a fresh virtual environment and runs this script with
that environment's Python, from a folder outside the repository; then it compares the printed scores with
``toy_scores()`` computed by the editable install. By hand:

    python install_smoke.py    # prints {"version": ..., "bm25": [[...]], "bi_encoder": ..., "cross_encoder": ...}
    python install_smoke.py --core   # also checks a core install (no extras): see core_checks

It stops with an error when the package, the checkpoints or the toy set are not the installed ones.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import xencoder_lab
from xencoder_lab import checkpoints, course_models, data
from xencoder_lab.bm25 import BM25

# What only an extra installs (module -> extra), never the core install.
OPTIONAL = {"jupyterlab": "course", "ipywidgets": "course", "matplotlib": "course", "pytrec_eval": "course",
            "onnxruntime": "fast", "onnx": "fast", "qdrant_client": "scale", "ray": "scale"}
# The command line's searches a core install runs: BM25, a dense first stage, and the LoRA poly-encoder (peft).
CLI_SYSTEMS = ("bm25", "bi", "poly")

# The course checkpoints' loaders, named in one place.
LOAD_BI_ENCODER = course_models.load_bi_encoder
LOAD_CROSS_ENCODER = course_models.load_cross_encoder


def toy_scores() -> dict:
    """Every toy test query against every toy document, scored by BM25, the bi-encoder and the cross-encoder.

    Rows follow ``queries``, columns ``documents`` (both sorted by id); the bi-encoder's score is the dot product
    of the normalised embeddings, the cross-encoder's its logit.
    """
    toy = data.load_beir("toy", path=data.TOY_PATH)
    qids, dids = sorted(toy.queries), sorted(toy.corpus)
    queries = [toy.queries[q] for q in qids]
    docs = [data.document_text(toy.corpus[d]) for d in dids]
    bm25 = BM25(docs, dids)
    bi_encoder, cross_encoder = LOAD_BI_ENCODER(), LOAD_CROSS_ENCODER()
    dense = bi_encoder.encode_queries(queries) @ bi_encoder.encode_documents(docs).T  # (Q, N)
    return {
        "queries": qids,
        "documents": dids,
        "bm25": [bm25.scores(q).tolist() for q in queries],
        "bi_encoder": dense.tolist(),
        "cross_encoder": [cross_encoder.score(q, docs).tolist() for q in queries],
    }


def core_checks() -> dict:
    """A core install (``pip install xencoder-lab``, no extras): none of the extras' packages came with it, every
    module of the package imports, each optional feature's ImportError names its extra, and the command line
    searches the toy set with each of ``CLI_SYSTEMS``."""
    import numpy as np

    present = sorted(m for m in OPTIONAL if importlib.util.find_spec(m) is not None)
    if present:
        sys.exit(f"the core install brought {present}, which belong to extras")
    modules = sorted(m.name for m in pkgutil.iter_modules(xencoder_lab.__path__) if not m.name.startswith("_"))
    for name in modules:
        importlib.import_module(f"xencoder_lab.{name}")  # an error here fails the script
    from xencoder_lab import distributed, runtime, store, widgets

    toy = data.load_beir("toy", path=data.TOY_PATH)
    features = {
        "course": lambda: widgets.comparison({}, toy),
        "fast": lambda: runtime.OnnxForward("model.onnx"),
        "scale": lambda: store.QdrantStore(np.eye(2, dtype=np.float32), ["a", "b"]),
        "scale (Ray)": lambda: distributed.encode_corpus_distributed(LOAD_BI_ENCODER, toy),
    }
    for extra, call in features.items():
        try:
            call()
        except ImportError as err:
            if f'pip install "xencoder-lab[{extra.split()[0]}]"' not in str(err):
                sys.exit(f"the {extra} feature's ImportError does not name its extra: {err}")
        else:
            sys.exit(f"the {extra} feature ran without its extra")
    command = [str(Path(sys.executable).with_name("xencoder-lab")), "search", "--data", str(data.TOY_PATH)]
    for system in CLI_SYSTEMS:
        done = subprocess.run(command + ["--system", system, "vitamin d"], capture_output=True, text=True)
        if done.returncode != 0 or "d0" not in done.stdout:  # the toy ids are d01 ... d16
            sys.exit(f"`xencoder-lab search --system {system}` failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"modules": modules, "searched": list(CLI_SYSTEMS)}


def main() -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    package = Path(xencoder_lab.__file__).resolve().parent
    if site_packages not in package.parents:
        sys.exit(f"xencoder_lab is imported from {package}, not from this environment's {site_packages}")
    for what, path in {"checkpoints": checkpoints.CHECKPOINTS, "toy set": data.TOY_PATH}.items():
        if not path.is_dir() or package not in path.resolve().parents:
            sys.exit(f"{what} not in the installed package {package}: looked in {path}")
    version = importlib.metadata.version("xencoder-lab")
    if version != xencoder_lab.__version__:
        sys.exit(f"installed metadata says {version}, xencoder_lab.__version__ says {xencoder_lab.__version__}")
    command = [str(Path(sys.executable).with_name("xencoder-lab")), "evaluate", "--data", str(data.TOY_PATH),
               "--systems", "bm25", "--latency-queries", "0"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or "bm25" not in done.stdout:
        sys.exit(f"the installed command `{' '.join(command)}` failed: {done.stderr}")
    core = core_checks() if "--core" in sys.argv[1:] else {}
    print(json.dumps({"version": version, **core, **toy_scores()}))


if __name__ == "__main__":
    main()
