"""The optional parts of the package and the extra that installs each (``pip install "xencoder-lab[<extra>]"``).

The core install (models, training, retrieval, the checkpoints, the command line) needs none of them: a module
that uses one imports it inside the function that needs it, through ``require``, whose error names the extra.

>>> require("json", "fast", "a doctest").__name__
'json'
>>> require("no_such_module_xlab", "fast", "accelerate()")
Traceback (most recent call last):
ImportError: accelerate() needs no_such_module_xlab, ...: pip install "xencoder-lab[fast]" ...
"""

from __future__ import annotations

import importlib
from types import ModuleType

# extra -> what it adds (pyproject.toml's [project.optional-dependencies] lists the packages)
EXTRAS = {
    "fast": "ONNX Runtime and onnx: xencoder_lab.runtime (float32 and int8 inference)",
    "scale": "qdrant-client and Ray Data: xencoder_lab.store's QdrantStore, xencoder_lab.distributed",
    "course": "JupyterLab, ipywidgets, matplotlib, pytrec_eval: the notebooks and xencoder_lab.widgets",
}


def require(module: str, extra: str, what: str) -> ModuleType:
    """``module``, imported; if it is missing, an ImportError saying that ``what`` needs it and which extra
    installs it."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}: one of {sorted(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f'{what} needs {module.split(".")[0]}, which the core install leaves out: '
                          f'pip install "xencoder-lab[{extra}]" ({err})') from err
