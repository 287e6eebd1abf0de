"""A wheel built from the repository works without it: installed into a fresh virtual environment, it finds its
code, both course checkpoints and the toy set, and scores the toy set as the editable install does.

It builds the sdist and the wheel from it (``python -m build``, as a release would), creates a virtual environment
outside the repository, installs torch first (``$TORCH_INDEX`` as in the Makefile) and then the wheel with its
dependencies from pip's configured indexes, and runs ``install_smoke.py`` there, from outside the repository and
in Python's isolated mode, so nothing of the checkout is visible. About two minutes, mostly pip; deselect it with
``-m "not install"`` for a quick local run.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import xencoder_lab

ROOT = Path(__file__).resolve().parent.parent
SMOKE = Path(__file__).resolve().parent / "install_smoke.py"
BUDGET = 61 * 2**20  # the checkpoints' 60 MB budget, plus 1 MB for the code
HIDDEN = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "XLAB_CHECKPOINTS")


def _run(args, cwd, env=None, timeout=1800) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _course_files() -> set[str]:
    """The files the wheel must carry, the checkpoints and the toy set in ``data/``, as paths inside the wheel.
    The corpus embeddings stay out: a course convenience for the notebooks, which live in the repository."""
    files = [p for p in (ROOT / "data" / "checkpoints").glob("*/*")
             if not p.parent.name.endswith(".previous") and p.name != "corpus_embeddings.npz"]
    files += [p for p in (ROOT / "data" / "toy").rglob("*") if p.is_file()]
    return {"xencoder_lab/_data/" + p.relative_to(ROOT / "data").as_posix() for p in files}


def _torch_requirement() -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in dependencies if d.startswith("torch=="))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("build", reason="the wheel cannot be built without `build`: pip install -e .[dev]")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out, timeout=600)
    return next(out.glob("xencoder_lab-*.whl"))


@pytest.mark.install
def test_wheel_carries_the_checkpoints_and_the_toy_set(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    carried, expected = {n for n in names if n.startswith("xencoder_lab/_data/")}, _course_files()
    assert carried == expected, f"missing: {expected - carried}; not in data/: {carried - expected}"
    assert all(n.startswith(("xencoder_lab/", "xencoder_lab-")) for n in names), "only the package and its metadata"
    assert wheel.stat().st_size < BUDGET, f"the wheel is {wheel.stat().st_size / 2**20:.1f} MiB"


@pytest.mark.install
def test_wheel_installed_in_a_fresh_environment_scores_as_the_editable_install(wheel, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN}
    env["XLAB_CACHE"] = str(tmp_path / "cache")  # computes everything afresh, reads nothing the checkout cached
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=300)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--no-compile"]
    index = ["--index-url", os.environ["TORCH_INDEX"]] if os.environ.get("TORCH_INDEX") else []
    _run(pip + [_torch_requirement()] + index, cwd=tmp_path, env=env)
    _run(pip + [str(wheel)], cwd=tmp_path, env=env)

    script = shutil.copy(SMOKE, tmp_path / SMOKE.name)
    installed = json.loads(_run([python, "-I", str(script)], cwd=tmp_path, env=env, timeout=600))

    spec = importlib.util.spec_from_file_location("install_smoke", SMOKE)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    editable = smoke.toy_scores()
    assert installed["version"] == xencoder_lab.__version__
    assert (installed["queries"], installed["documents"]) == (editable["queries"], editable["documents"])
    for model in ("bm25", "bi_encoder", "cross_encoder"):
        np.testing.assert_allclose(installed[model], editable[model], rtol=1e-4, atol=1e-4, err_msg=model)
