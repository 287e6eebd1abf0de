"""Where the course's own files are: the committed checkpoints and the toy set, inside an installed wheel or in the
repository.

The repository keeps them in its top-level ``data/`` folder (``data/checkpoints/<recipe>/``, ``data/toy/``), where
readers find them; an editable install (``make course``, ``pip install -e .``) uses them there. A wheel
(``pip install /path/to/xencoder-lab``, or from git) carries the same files inside the package, as
``xencoder_lab/_data/``, so they are found without the repository.

``XLAB_CHECKPOINTS`` points the checkpoints elsewhere, e.g. at a writable folder for the ones you train yourself
(``python -m xencoder_lab.recipes <recipe>`` writes there too).

>>> sorted(p.name for p in _find("checkpoints").iterdir() if (p / "weights.safetensors").exists())
['bi-encoder', 'colbert', 'cross-encoder', 'distilled-bi-encoder', 'poly-encoder', 'query-tower',
 'small-cross-encoder']
>>> (_find("checkpoints") / "cross-encoder-first-stage" / "manifest.json").exists()   # its manifest, not its weights
True
>>> sorted(p.name for p in TOY_PATH.iterdir())
['corpus.jsonl', 'qrels', 'queries.jsonl']
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "_data"  # in a wheel
REPOSITORY = Path(__file__).resolve().parent.parent / "data"  # in a clone (editable install)


def _find(name: str) -> Path:
    """The folder ``name`` inside the package when installed from a wheel, else in the repository's ``data/``."""
    packaged = PACKAGED / name
    return packaged if packaged.is_dir() else REPOSITORY / name


CHECKPOINTS = Path(os.environ.get("XLAB_CHECKPOINTS") or _find("checkpoints"))
TOY_PATH = _find("toy")
