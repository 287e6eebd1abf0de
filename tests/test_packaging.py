"""The set-up files agree with each other: pyproject.toml, environment.yml, the Makefile and CI."""

import re
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _make_extras() -> list[str]:
    """The extras the Makefile's set-up installs with the editable package."""
    found = re.findall(r'-e "?\.\[([\w,-]+)\]"?', (ROOT / "Makefile").read_text())
    assert len(found) == 1, "one editable install in the Makefile"
    return found[0].split(",")


def test_make_installs_every_extra():
    """make course / make test run every notebook and every test: the course, fast and scale extras and dev."""
    assert sorted(_make_extras()) == sorted(_project()["optional-dependencies"])


def test_environment_yml_installs_what_pyproject_declares():
    project = _project()
    declared = set(project["dependencies"])
    for extra in _make_extras():  # environment.yml is make's environment: the core and every extra
        declared |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    in_env = [r.strip() for r in pip_section if not r.startswith("-e")]
    assert len(in_env) == len(set(in_env)), "a package listed twice in environment.yml"
    assert sorted(in_env) == sorted(declared), "keep environment.yml's pip list equal to pyproject"
    assert "-e ." in pip_section


def test_the_core_leaves_out_the_notebook_stack():
    """A prototype's install (no extras) carries no notebook, ONNX or scale-out package, and every extra that
    the package's ImportErrors name (xencoder_lab.extras) exists, with what pyproject says it installs."""
    from xencoder_lab.extras import EXTRAS

    project = _project()
    core = {_name(r) for r in project["dependencies"]}
    heavy = {"jupyterlab", "ipywidgets", "matplotlib", "onnxruntime", "onnx", "qdrant-client", "ray",
             "pytrec-eval-terrier", "notebook", "nbval", "pytest"}
    assert not core & heavy, f"in the core install: {sorted(core & heavy)}"
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    assert {"jupyterlab", "ipywidgets", "matplotlib"} <= {_name(r) for r in extras["course"]}
    assert {_name(r) for r in extras["fast"]} == {"onnxruntime", "onnx"}
    assert {_name(r) for r in extras["scale"]} == {"qdrant-client", "ray"}
    assert "pytrec-eval-terrier" in {_name(r) for r in extras["dev"]}


def test_readme_names_every_user_extra():
    readme = (ROOT / "README.md").read_text()
    for extra in set(_project()["optional-dependencies"]) - {"dev"}:
        assert f'xencoder-lab[{extra}]' in readme, f"README's install section does not name the {extra} extra"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make course" in readme
    assert re.search(r"^\s*make test\b", ci, re.M)
    assert "XLAB_DATA" in ci and "XLAB_FAST=1" in ci


def test_one_source_for_the_version():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "xencoder_lab.__version__"}


def test_readme_states_the_oldest_python_pyproject_requires():
    oldest = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"].removeprefix(">=")
    readme = (ROOT / "README.md").read_text()
    assert f"Python {oldest} to" in readme and f"make test PYTHON=python{oldest}" in readme
