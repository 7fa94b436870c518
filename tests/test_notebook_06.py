"""Notebook 06 (reasoning traces): headless with papermill (writes the gallery), and as a person uses it — in
JupyterLab on localhost, driven by headless Chromium (Debian's ``chromium`` through Playwright, no browser
download): run all cells, click "next" on the viewer, check that the image and the think text changed, then
open the static gallery and count its panels. Screenshots go to the test's tmp dir (its path is printed).

Without ``/usr/bin/chromium`` or the ``playwright`` package the browser test is skipped with the reason,
unless ``THINK2SEG_REQUIRE_BROWSER=1`` (CI sets it), where it fails instead.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.reports.reproduce import find_notebook, run_notebook

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

CHROMIUM = os.environ.get("THINK2SEG_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def trace_runs(synth_root, tmp_path_factory):
    """The tiny prompter (a think text that differs per image) and the oracle, first question of 6 images."""
    root = tmp_path_factory.mktemp("runs06")
    common = dict(data=f"earthreason:{synth_root}", split="val", segmenter="grabcut", questions="first",
                  limit=6, keep_masks=True)
    runs = {"tiny": str(root / "tiny"), "oracle": str(root / "oracle")}
    evaluate(EvalConfig(prompter="tiny", out=runs["tiny"], **common), progress=False)
    evaluate(EvalConfig(prompter="oracle?image_size=128", out=runs["oracle"], **common), progress=False)
    return runs


def _params(runs, reports):
    return {"runs": runs, "reports_dir": str(reports), "gallery_sort": "delta", "gallery_worst": 2,
            "gallery_best": 1, "gallery_filters": []}


def test_notebook_06_headless_writes_the_gallery(trace_runs, tmp_path):
    out = run_notebook("06", _params(trace_runs, tmp_path / "reports"), executed_dir=tmp_path / "executed")
    page = (tmp_path / "reports" / "06_reasoning_traces.html").read_text()
    assert page.count('<section class="panel">') == 3 and page.count('<div class="run">') == 6
    outputs = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


def _browser_or_skip():
    reason = None
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; `make test` installs it when run as root)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install -e '.[browser]')"
    if reason and os.environ.get("THINK2SEG_REQUIRE_BROWSER") == "1":
        pytest.fail(f"THINK2SEG_REQUIRE_BROWSER=1 but {reason}")
    if reason:
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_lab(root: Path, tmp: Path):
    """JupyterLab serving ``root`` on 127.0.0.1 with a token; returns (process, base url, token)."""
    port, token = _free_port(), "t2s-browser-test"
    env = {**os.environ, "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "ws"), "JUPYTERLAB_SETTINGS_DIR": str(tmp / "st"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "rt"), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    news = tmp / "st" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "Jupyter news" toast over the screenshots
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
         "--ServerApp.open_browser=False", "--ServerApp.port_retries=0"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited ({proc.returncode}): {(tmp / 'lab.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            return proc, base, token
        except OSError:
            time.sleep(0.5)
    _stop(proc)
    pytest.fail(f"jupyter lab did not answer in 90 s: {(tmp / 'lab.log').read_text()[-2000:]}")


def _stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started (its own session)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_notebook_06_in_jupyterlab_with_chromium(trace_runs, tmp_path):
    _browser_or_skip()
    import jupytext
    import nbformat
    from papermill.parameterize import parameterize_notebook
    from playwright.sync_api import sync_playwright

    from think2seg.reports.viewer import open_runs

    work = tmp_path / "lab"
    work.mkdir()
    nb = jupytext.read(find_notebook("06"))
    nb.metadata["papermill"] = {}
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    nb = parameterize_notebook(nb, _params(trace_runs, work / "reports"))
    nbformat.write(nb, str(work / "06.ipynb"))
    state = open_runs(list(trace_runs.values()))
    first, second = (state.runs[0].record(i)["think"] for i in state.all_ids[:2])
    assert first != second, "fixture: the first two samples must have different think texts"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    proc, base, token = _start_lab(work, tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(f"{base}/lab/tree/06.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            page.wait_for_timeout(1500)
            if page.locator(".jp-Dialog .jp-mod-accept").count():  # "Select Kernel"
                page.click(".jp-Dialog .jp-mod-accept")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
            page.click('.lm-MenuBar-itemLabel:text-is("Run")')
            page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
            page.wait_for_selector("button.t2s-next", timeout=180_000)
            think, img = page.locator(".t2s-text .think").first, page.locator("img.t2s-image").first
            page.wait_for_function("() => document.querySelector('img.t2s-image')?.naturalWidth > 0",
                                   timeout=30_000)
            before = (think.inner_text(), img.get_attribute("src"))
            assert before[0].strip() == first.strip()
            assert page.locator(".t2s-count").inner_text().strip() == "1 / 6 samples"
            page.locator(".t2s-viewer").evaluate("e => e.scrollIntoView({block: 'start'})")
            page.screenshot(path=str(shots / "06_viewer_first.png"))

            page.click("button.t2s-next")
            page.wait_for_function(
                "t => document.querySelector('.t2s-text .think')?.innerText.trim() !== t", arg=before[0].strip(),
                timeout=30_000)
            after = (think.inner_text(), img.get_attribute("src"))
            assert after[0].strip() == second.strip() and after[1] != before[1]
            assert page.locator(".t2s-count").inner_text().strip() == "2 / 6 samples"
            assert state.all_ids[1] in page.locator(".t2s-header").inner_text()
            page.locator(".t2s-viewer").evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "06_viewer_next.png"))

            requests = []
            gallery = browser.new_page(viewport={"width": 1100, "height": 1400})
            gallery.on("request", lambda r: requests.append(r.url))
            gallery.goto((work / "reports" / "06_reasoning_traces.html").as_uri())
            assert gallery.locator("section.panel").count() == 3
            assert gallery.locator("section.panel .run").count() == 6
            assert gallery.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 300)")
            gallery.screenshot(path=str(shots / "06_gallery.png"), full_page=True)
            assert all(u.startswith(("file:", "data:")) for u in requests), requests
            browser.close()
    finally:
        _stop(proc)
    print(f"screenshots: {shots}")
    keep = os.environ.get("THINK2SEG_SCREENSHOTS")
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)
