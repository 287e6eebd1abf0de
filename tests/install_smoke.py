"""Smoke test of an installed xencoder-lab: the code, both course checkpoints and the toy set, from the install alone.

``tests/test_install.py`` builds the wheel, installs it into a fresh virtual environment and runs this script with
that environment's Python, from a folder outside the repository; then it compares the printed scores with
``toy_scores()`` computed by the editable install. By hand:

    python install_smoke.py    # prints {"version": ..., "bm25": [[...]], "bi_encoder": ..., "cross_encoder": ...}

It stops with an error when the package, the checkpoints or the toy set are not the installed ones.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import xencoder_lab
from xencoder_lab import checkpoints, course_models, data
from xencoder_lab.bm25 import BM25

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
    print(json.dumps({"version": version, **toy_scores()}))


if __name__ == "__main__":
    main()
