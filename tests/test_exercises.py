"""Every notebook's exercises, as a learner meets them: at least two code exercises per notebook, each with a
check in words; an unanswered exercise reports "not done yet" (the notebook still runs), the solution in
``xencoder_lab.solutions`` passes its check, and the committed notebooks are unanswered.

Cells are found by their tags: ``exercise`` (a function to write, its body ``raise NotImplementedError``) and
``check`` (one call into ``xencoder_lab.exercises.nbNN`` with the learner's function). Each notebook's wrong
versions, one per mistake a check names, are in ``tests/test_exercises_nbNN.py``.
"""

import ast
import contextlib
import importlib
import io
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def tagged(notebook: Path, tag: str) -> list[dict]:
    cells = json.loads(notebook.read_text())["cells"]
    return [cell for cell in cells if tag in cell.get("metadata", {}).get("tags", [])]


def defined(source: str) -> list[str]:
    """The names of the functions a cell defines."""
    return [node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]


def run_cell(source: str, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<cell>", "exec"), namespace)
    return out.getvalue()


def exercises(notebook: Path) -> list[tuple[str, str, str]]:
    """(function name, exercise cell source, check cell source) for each code exercise, in order."""
    found = []
    checks = ["".join(cell["source"]) for cell in tagged(notebook, "check")]
    for cell in tagged(notebook, "exercise"):
        source = "".join(cell["source"])
        (name,) = defined(source)
        (check_source,) = [c for c in checks if f"({name})" in c]
        found.append((name, source, check_source))
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_each_notebook_asks_for_code(notebook):
    found = exercises(notebook)
    assert len(found) >= 2, f"{notebook.name}: {len(found)} code exercises, the course asks for at least two"
    for name, source, check_source in found:
        assert "raise NotImplementedError" in source, f"{name}: the committed exercise must be unanswered"
        body = [line for line in check_source.splitlines() if line.strip() and not line.startswith("#")]
        assert len(body) <= 2, f"{name}'s check cell holds code beyond the call: the answer belongs in solutions"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_unanswered_exercises_say_so_and_solutions_pass(notebook):
    number = notebook.name[:2]
    solutions = importlib.import_module(f"xencoder_lab.solutions.nb{number}")
    checks = importlib.import_module(f"xencoder_lab.exercises.nb{number}")
    for name, source, check_source in exercises(notebook):
        namespace: dict = {f"nb{number}": checks}
        run_cell(source, namespace)
        said = run_cell(check_source, namespace)
        assert "not done yet" in said, f"{name} unanswered: {said!r}"
        namespace[name] = getattr(solutions, name)
        said = run_cell(check_source, namespace)
        assert ": correct" in said and "not yet" not in said, f"{name} with its solution: {said!r}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_committed_checks_report_not_done(notebook):
    for cell in tagged(notebook, "check"):
        text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
        assert "not done yet" in text or "not answered yet" in text, "".join(cell["source"])[:80]
