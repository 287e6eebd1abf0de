"""A real browser: JupyterLab in headless Chromium runs a notebook that builds notebook 05's comparison widget,
a query typed into it shows one result column per system, and an empty query shows the error message instead of a
traceback.

Needs Chromium (Debian's ``chromium`` package; ``make test`` installs it where apt-get is available) and
Playwright for Python (the ``dev`` extra), which drives that Chromium rather than downloading its own.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright comes with the dev extra")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("XLAB_REQUIRE_BROWSER"):  # CI: the test must run
    raise RuntimeError("XLAB_REQUIRE_BROWSER is set but there is no Chromium: `apt-get install chromium`")
if CHROMIUM is None:
    pytest.skip("no Chromium on this machine: `apt-get install chromium` (make test does it where it can)",
                allow_module_level=True)

CELLS = [
    "from xencoder_lab.bi_encoder import BiEncoder\n"
    "from xencoder_lab.data import TOY_PATH, load_beir\n"
    "from xencoder_lab.pipeline import Pipeline\n"
    "from xencoder_lab.widgets import comparison",
    "toy = load_beir('toy', path=TOY_PATH)\n"
    "systems = {'BM25': Pipeline(toy, 'bm25'), 'bi-encoder': Pipeline(toy, BiEncoder(max_length=64))}",
    "comparison(systems, toy, depth=5, k=3)",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free port, serving a folder with a notebook of ``CELLS``, with settings of its own
    (not the user's); yields the notebook's URL."""
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
                          for c in CELLS],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "widget.ipynb").write_text(json.dumps(notebook))
    port, token = _free_port(), "xencoder-lab-test"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path / 'notebooks'}", "--allow-root"],
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # the server answers within seconds
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield f"{url}/lab/tree/widget.ipynb?token={token}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_widget_in_jupyterlab_shows_results_and_errors(lab):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(lab)
        page.get_by_text(re.compile(r"\| Idle$")).wait_for(timeout=120_000)  # the kernel has started
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        box = page.get_by_placeholder("type a query and press Enter")
        box.wait_for(timeout=120_000)  # the kernel starts, imports torch, loads the model, builds the widget

        box.fill("Does aspirin prevent heart attacks?")
        box.press("Enter")
        results = page.locator(".widget-html-content table")
        results.nth(1).wait_for(timeout=60_000)
        assert results.count() == 2  # one result column per system
        assert results.first.locator("tr").count() == 4  # a header and the top 3
        output = page.locator(".widget-html-content").first.inner_text()
        assert "BM25" in output and "bi-encoder" in output and "ms" in output

        box.fill("")
        box.press("Enter")
        page.get_by_text("the query is empty").wait_for(timeout=30_000)
        assert page.locator(".widget-html-content table").count() == 0
        assert "Traceback" not in page.locator(".jp-Notebook").inner_text()
        browser.close()
