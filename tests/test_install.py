"""A wheel built from the repository works without it: installed into a fresh virtual environment with the core
dependencies alone (no extras), it finds its code, both course checkpoints and the toy set, imports every module,
runs the command line's searches, and scores the toy set as the editable install does.

It copies the tracked files (``git ls-files``) to a temporary folder, so that nothing a checkout leaves around
(``build/lib``, an untracked module) can reach the wheel, and builds the sdist and the wheel from it (``python -m
build``, as a release would); every file of the wheel must be a tracked module, a tracked course file or the
wheel's metadata. Then it creates a virtual environment outside the repository, installs torch first
(``$TORCH_INDEX`` as in the Makefile) and then the wheel, without extras, from pip's configured indexes, and runs
``install_smoke.py --core`` there, from outside the repository and in Python's isolated mode, so nothing of the
checkout is visible. About two minutes, mostly pip; deselect it with ``-m "not install"`` for a quick local run.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
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


def _tracked() -> list[str]:
    """The repository's tracked files (as in the working tree), relative paths."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("the wheel is built from the tracked files: needs git and a checkout")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in listed.decode().split("\0") if p and (ROOT / p).is_file()]


def _course_files(tracked: list[str]) -> set[str]:
    """The files the wheel must carry, the checkpoints and the toy set in ``data/``, as paths inside the wheel.
    The corpus embeddings, the mining logits, the int8 copies' logits and the MaxSim scores stay out: course
    conveniences for the notebooks, which live in the repository."""
    files = [p for p in tracked if re.fullmatch(r"data/checkpoints/[^/]+/[^/]+", p)
             and not p.endswith(("/corpus_embeddings.npz", "/corpus_embeddings.int8.npz", "/mining.npz",
                                 "/pairs.int8.npz", "/maxsim_scores.npz"))]
    files += [p for p in tracked if p.startswith("data/toy/")]
    return {"xencoder_lab/_data/" + p.removeprefix("data/") for p in files}


def _unexpected(names, tracked: list[str]) -> list[str]:
    """The wheel's files that are none of: a tracked module of the package (``xencoder_lab/*.py``), a tracked
    file of ``data/`` (``xencoder_lab/_data/...``), the wheel's metadata (``xencoder_lab-*.dist-info/``)."""
    modules = {p for p in tracked if re.fullmatch(r"xencoder_lab/[^/]+\.py", p)}
    course = {"xencoder_lab/_data/" + p.removeprefix("data/") for p in tracked if p.startswith("data/")}
    metadata = re.compile(r"xencoder_lab-[^/]+\.dist-info/[^/]+(/[^/]+)?")
    return sorted(n for n in names if n not in modules and n not in course and not metadata.fullmatch(n))


def _torch_requirement() -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in dependencies if d.startswith("torch=="))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built (through the sdist) from a fresh copy of the tracked files: no ``build/`` leftovers."""
    pytest.importorskip("build", reason="the wheel cannot be built without `build`: pip install -e .[dev]")
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    for path in _tracked():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, source / path)
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=out, timeout=600)
    return next(out.glob("xencoder_lab-*.whl"))


def test_the_file_list_check_rejects_a_stray_module():
    tracked = _tracked()
    names = ["xencoder_lab/cli.py", "xencoder_lab/_data/toy/corpus.jsonl", "xencoder_lab-0.1.0.dist-info/METADATA",
             "xencoder_lab-0.1.0.dist-info/licenses/LICENSE", "xencoder_lab/stray.py", "xencoder_lab/_data/x.bin",
             "build/lib/xencoder_lab/cli.py", "xencoder_lab/notes.txt"]
    assert _unexpected(names, tracked) == ["build/lib/xencoder_lab/cli.py", "xencoder_lab/_data/x.bin",
                                           "xencoder_lab/notes.txt", "xencoder_lab/stray.py"]


@pytest.mark.install
def test_wheel_carries_the_tracked_modules_the_checkpoints_and_the_toy_set_only(wheel):
    names, tracked = zipfile.ZipFile(wheel).namelist(), _tracked()
    assert not _unexpected(names, tracked), f"not tracked in the repository: {_unexpected(names, tracked)}"
    modules = {p for p in tracked if re.fullmatch(r"xencoder_lab/[^/]+\.py", p)}
    assert modules <= set(names), f"modules missing from the wheel: {sorted(modules - set(names))}"
    here = {p.relative_to(ROOT).as_posix() for p in (ROOT / "xencoder_lab").glob("*.py")}
    assert here <= modules, f"untracked, so not in the wheel (git add them): {sorted(here - modules)}"
    carried, expected = {n for n in names if n.startswith("xencoder_lab/_data/")}, _course_files(tracked)
    assert carried == expected, f"missing: {expected - carried}; not in data/: {carried - expected}"
    assert wheel.stat().st_size < BUDGET, f"the wheel is {wheel.stat().st_size / 2**20:.1f} MiB"


@pytest.mark.install
def test_core_install_in_a_fresh_environment_works_and_scores_as_the_editable_install(wheel, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in HIDDEN}
    env["XLAB_CACHE"] = str(tmp_path / "cache")  # computes everything afresh, reads nothing the checkout cached
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=300)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--no-compile"]
    index = ["--index-url", os.environ["TORCH_INDEX"]] if os.environ.get("TORCH_INDEX") else []
    start = time.perf_counter()
    _run(pip + [_torch_requirement()] + index, cwd=tmp_path, env=env)
    torch_seconds = time.perf_counter() - start
    _run(pip + [str(wheel)], cwd=tmp_path, env=env)  # the core: no extras
    seconds = time.perf_counter() - start
    size = sum(p.lstat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"\ncore install: {size / 1e6:.0f} MB in {seconds:.0f} s (torch {torch_seconds:.0f} s), "
          f"wheel {wheel.stat().st_size / 1e6:.1f} MB")

    script = shutil.copy(SMOKE, tmp_path / SMOKE.name)
    installed = json.loads(_run([python, "-I", str(script), "--core"], cwd=tmp_path, env=env, timeout=900))

    spec = importlib.util.spec_from_file_location("install_smoke", SMOKE)
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    editable = smoke.toy_scores()
    assert installed["version"] == xencoder_lab.__version__
    assert set(installed["modules"]) >= {"cli", "recipes", "runtime", "store", "widgets", "distributed", "export"}
    assert (installed["queries"], installed["documents"]) == (editable["queries"], editable["documents"])
    for model in ("bm25", "bi_encoder", "cross_encoder"):
        np.testing.assert_allclose(installed[model], editable[model], rtol=1e-4, atol=1e-4, err_msg=model)
