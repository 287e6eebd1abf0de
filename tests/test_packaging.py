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


def test_environment_yml_installs_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = project["dependencies"] + extras["dev"] + extras["scale"]  # make installs both extras
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    in_env = [r for r in pip_section if not r.startswith("-e")]
    assert sorted(map(str.strip, in_env)) == sorted(declared), "keep environment.yml's pip list equal to pyproject"
    assert "-e ." in pip_section


def test_torch_is_pinned_and_installed_first():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in (ROOT / "pyproject.toml").read_text()
    assert makefile.index("$(TORCH)") < makefile.index("-e .[dev,scale]")


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
