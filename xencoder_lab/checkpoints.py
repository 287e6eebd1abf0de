"""Course checkpoints: small files of what training changed, a manifest, and a test for staleness (notebook 03).

A course checkpoint lives in ``data/checkpoints/<recipe>/``:

- ``weights.safetensors``: only the tensors training changed (e.g. the top layers), in fp16;
- ``manifest.json``: the recipe and its settings, a fingerprint of the code and settings that made it, steps,
  wall time, hardware, the loss log and the metrics measured on the stored (fp16) weights.

Loading rebuilds the base model and lays the stored tensors over it. The fingerprint hashes the settings and
the code of every function the recipe names (parsed, so comments, docstrings and formatting do not count):
when that code changes, the committed checkpoint is stale and a test says so.

>>> fingerprint({"steps": 3}, [fingerprint]) == fingerprint({"steps": 3}, [fingerprint])
True
>>> fingerprint({"steps": 3}, [fingerprint]) == fingerprint({"steps": 4}, [fingerprint])
False
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import platform
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors.torch import load_file, save_file

from .cache import atomic_write

from .assets import CHECKPOINTS  # in an installed wheel or in the repository: see assets
MAX_BYTES = 25 * 2**20  # per checkpoint; 60 MB for all of them together


def _canonical(node) -> str:
    """``ast.dump`` without the fields that are None or empty, so that it reads the same on every Python 3.9+
    (3.12 added ``type_params=[]`` to each function, 3.13 hides empty fields).

    >>> _canonical(ast.parse("def f(x): return x + 1").body[0].body[0])
    "Return(value=BinOp(left=Name(id='x', ctx=Load()), op=Add(), right=Constant(value=1)))"
    """
    if isinstance(node, ast.AST):
        fields = ((f, _canonical(getattr(node, f, None))) for f in node._fields)
        return type(node).__name__ + "(" + ", ".join(f"{f}={v}" for f, v in fields if v not in ("None", "[]")) + ")"
    if isinstance(node, list):
        return "[" + ", ".join(_canonical(x) for x in node) + "]"
    return repr(node)


def _code_digest(fn: Callable) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    tree.body[0].name = ""  # the qualified name is hashed beside it
    for node in ast.walk(tree):  # drop docstrings: they do not change what the code computes
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(_canonical(tree).encode()).hexdigest()


def fingerprint(settings: dict, code: Sequence[Callable]) -> str:
    """sha256 of the settings (canonical JSON) and of the parsed code of each function, comments dropped."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for fn in code:  # the qualified name, not the module: run as `python -m`, a module is called __main__
        digest.update(f"{fn.__qualname__}:{_code_digest(fn)}".encode())
    return digest.hexdigest()[:16]


def hardware() -> dict:
    """What a run ran on, for the manifest."""
    device = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(
    module: torch.nn.Module,
    names: Sequence[str],
    manifest: dict,
    folder: str | os.PathLike,
    overwrite: bool = False,
) -> Path:
    """Store the parameters ``names`` of ``module`` in fp16 and ``manifest`` in ``folder``.

    The folder is written in full under a temporary name and then renamed, so it is never half-written.
    An existing checkpoint is kept unless ``overwrite=True``; then it is moved to ``<folder>.previous``.
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already holds a checkpoint: pass overwrite=True (it moves to .previous).")
    state = module.state_dict()
    missing = [n for n in names if n not in state]
    if missing:
        raise KeyError(f"not parameters of this module: {missing[:3]}")
    tensors = {n: state[n].detach().to("cpu", torch.float16).contiguous() for n in names}
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    if size > MAX_BYTES:
        raise ValueError(f"{size / 2**20:.1f} MB is over the {MAX_BYTES / 2**20:.0f} MB a course checkpoint may take.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is for everyone who uses the course
    try:
        save_file(tensors, str(tmp / "weights.safetensors"))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if folder.exists():
            previous = folder.with_name(folder.name + ".previous")
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(folder, previous)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_weights(module: torch.nn.Module, folder: str | os.PathLike) -> torch.nn.Module:
    """Lay the tensors stored in ``folder`` over ``module`` (in its own dtype and device); return it."""
    stored = load_file(str(Path(folder) / "weights.safetensors"))
    state = module.state_dict()
    unknown = [n for n in stored if n not in state or state[n].shape != stored[n].shape]
    if unknown:
        raise ValueError(f"{folder} does not fit this model (e.g. {unknown[0]}): was it made from another base model?")
    with torch.no_grad():
        for name, tensor in stored.items():
            state[name].copy_(tensor.to(state[name].dtype))
    return module


def write_manifest(folder: str | os.PathLike, manifest: dict) -> None:
    """Replace the manifest of the checkpoint in ``folder`` (atomically), e.g. to add metrics measured later."""
    atomic_write(Path(folder) / "manifest.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=1) + "\n"))


def weights_digest(folder: str | os.PathLike) -> str:
    """sha256 of a checkpoint's weights file: recorded by checkpoints trained on top of another one."""
    return hashlib.sha256((Path(folder) / "weights.safetensors").read_bytes()).hexdigest()[:16]


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of the checkpoint in ``folder``."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint in {folder}: train it with the command in the README.")
    return json.loads(path.read_text())
