"""The notebooks in Jupyter: every parameter visible to papermill, a real Jupyter server that opens them (.ipynb and
jupytext .py) and runs one through its kernel API, and the sft notebook run in JupyterLab in a real browser."""

from __future__ import annotations

import ast
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.translators import PythonTranslator

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["pretrain_probe", "instruction_tuning", "sft", "format", "transfer", "ood", "beyond"]  # run_all's order
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium: `apt-get install -y chromium`


def _parameters_cell(name: str):
    """The cell tagged `parameters` of notebooks/<name>.ipynb."""
    nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    return cell


def _assigned(source: str) -> dict[str, tuple[str, str]]:
    """Every name the cell assigns, in order -> (annotation, default as written), read with `ast`."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign):
            out[node.target.id] = (ast.unparse(node.annotation), ast.get_source_segment(source, node.value))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                out[target.id] = ("None", ast.get_source_segment(source, node.value))
    return out


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_papermill_sees_every_parameter_with_its_type_default_and_help(name, caplog):
    cell = _parameters_cell(name)
    expected = _assigned(cell.source)
    paper_figures = {"overlay_paper"} if name != "beyond" else set()  # beyond draws no figure of the paper
    assert {"profile", "results_source", *paper_figures} <= set(expected)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        params = papermill.inspect_notebook(str(REPO / "notebooks" / f"{name}.ipynb"))
        PythonTranslator.inspect(cell)  # the parse papermill runs before every execution
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert list(params) == list(expected), f"papermill lists {list(params)}, the cell assigns {list(expected)}"
    for param, (annotation, default) in expected.items():
        assert params[param]["inferred_type_name"] == annotation, param
        assert params[param]["default"] == default, param
        assert params[param]["help"], f"{name}: parameter {param} has no help comment"


def test_papermill_drops_a_parameter_line_with_a_second_equals_sign(caplog):
    """Why the help comments avoid '=': papermill skips any line holding more than one, with a warning."""
    cell = nbformat.v4.new_code_cell('a: str = ""  # empty = default\nb: int = 1  # kept')
    with caplog.at_level(logging.WARNING, logger="papermill"):
        names = [p.name for p in PythonTranslator.inspect(cell)]
    assert names == ["b"]
    assert any("Unable to parse line 1" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------------------------
# a real Jupyter server on localhost, serving a copy of the notebooks (Lab autosaves what it runs: never the repo's)


class Lab:
    """A running `jupyter lab` (headless) and the REST calls the tests make to it."""

    def __init__(self, root: Path):
        self.root = root
        self.token = secrets.token_hex(16)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ,
                    "AMURO_RESULTS_DIR": str(root / "results"), "AMURO_FIGURES_DIR": str(root / "figures"),
                    # the user's own Jupyter config, runtime files, settings and workspaces stay untouched
                    "JUPYTER_CONFIG_DIR": str(root / "jupyter" / "config"),
                    "JUPYTER_RUNTIME_DIR": str(root / "jupyter" / "runtime"),
                    "JUPYTERLAB_SETTINGS_DIR": str(root / "jupyter" / "settings"),
                    "JUPYTERLAB_WORKSPACES_DIR": str(root / "jupyter" / "workspaces"),
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.log = root / "jupyter_lab.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> None:
        """Start the server and wait until its API answers."""
        cmd = [str(BIN / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root / 'serve'}"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"jupyter lab exited:\n{self.log.read_text()[-3000:]}"
            try:
                self.get("/api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        raise AssertionError(f"jupyter lab did not answer in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Shut the server (and its kernels) down; kill its process group if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.request("POST", "/api/shutdown")
        except (urllib.error.URLError, ConnectionError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def request(self, method: str, path: str, body: dict | None = None):
        """One authenticated REST call; the decoded JSON answer (None when empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def get(self, path: str):
        """GET `path`."""
        return self.request("GET", path)

    def execute(self, kernel_id: str, cells: list[str], timeout: float = 600) -> list[dict]:
        """Run code cells one after another on a kernel through the server's websocket channel, as Lab does.

        Returns every iopub message the cells produced; a cell that raises fails the test with its traceback."""
        import websocket  # websocket-client

        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels"
                                         f"?token={self.token}", timeout=timeout)
        session, iopub = uuid.uuid4().hex, []
        try:
            for code in cells:
                msg_id = uuid.uuid4().hex
                ws.send(json.dumps({
                    "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                               "username": "test", "version": "5.3", "date": ""},
                    "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                    "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                                "allow_stdin": False, "stop_on_error": True}}))
                reply, idle = None, False
                while reply is None or not idle:  # the reply and the kernel's return to idle, in either order
                    msg = json.loads(ws.recv())
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    if msg["channel"] == "shell" and msg["msg_type"] == "execute_reply":
                        reply = msg["content"]
                    elif msg["channel"] == "iopub":
                        iopub.append(msg)
                        idle = msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"
                assert reply["status"] == "ok", (f"cell failed: {reply.get('ename')}: {reply.get('evalue')}\n{code}\n"
                                                 + "\n".join(reply.get("traceback", [])))
        finally:
            ws.close()
        return iopub


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`jupyter lab` serving a copy of notebooks/ (with pyproject.toml: the jupytext config) from a tmp folder;
    its kernels write records and figures under the same tmp folder."""
    root = tmp_path_factory.mktemp("jupyterlab")
    serve = root / "serve"
    shutil.copytree(REPO / "notebooks", serve / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", serve / "pyproject.toml")
    server = Lab(root)
    start = time.perf_counter()
    server.start()
    print(f"\njupyter lab answered after {time.perf_counter() - start:.1f} s on {server.url}")
    yield server
    server.stop()


@pytest.mark.slow
def test_server_opens_every_notebook_as_ipynb_and_as_jupytext_py(lab):
    for name in NOTEBOOKS:
        repo_nb = nbformat.read(str(REPO / "notebooks" / f"{name}.ipynb"), as_version=4)
        for suffix in (".ipynb", ".py"):
            model = lab.get(f"/api/contents/notebooks/{name}{suffix}?type=notebook&content=1")
            assert model["type"] == "notebook" and model["format"] == "json", (name, suffix)
            cells = model["content"]["cells"]
            assert [(c["cell_type"], c["source"]) for c in cells] == \
                [(c.cell_type, c.source) for c in repo_nb.cells], f"{name}{suffix} opens with other cells"
            tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
            assert len(tagged) == 1 and tagged[0]["source"].startswith('profile: str = "tiny"'), (name, suffix)
            assert model["content"]["metadata"]["kernelspec"]["name"] == "python3"
    specs = lab.get("/api/kernelspecs")
    assert "python3" in specs["kernelspecs"]


def _smoke_cells(model: dict) -> list[str]:
    """A notebook's code cells with `profile = "smoke"` run right after its parameters cell (as papermill does)."""
    cells = []
    for cell in model["content"]["cells"]:
        if cell["cell_type"] == "code":
            cells.append(cell["source"])
            if "parameters" in cell["metadata"].get("tags", []):
                cells.append('profile = "smoke"')
    return cells


@pytest.mark.slow
def test_kernel_api_runs_pretrain_probe_on_smoke_and_its_figure_appears(lab):
    """pretrain_probe is the cheapest notebook that computes its figure from nothing (it builds the smoke ladder)."""
    figure = lab.root / "figures" / "smoke" / "fig2_pretrain_probe.png"
    assert not figure.exists()
    model = lab.get("/api/contents/notebooks/pretrain_probe.py?type=notebook&content=1")  # the jupytext source
    kernel = lab.request("POST", "/api/kernels", {"name": "python3", "path": "notebooks"})
    start = time.perf_counter()
    try:
        iopub = lab.execute(kernel["id"], _smoke_cells(model))
    finally:
        lab.request("DELETE", f"/api/kernels/{kernel['id']}")
    print(f"\npretrain_probe on smoke through the kernel API: {time.perf_counter() - start:.1f} s")
    assert figure.stat().st_size > 10_000 and figure.with_suffix(".pdf").exists()
    assert list((lab.root / "results" / "smoke" / "records").rglob("*.json")), "no evaluation records written"
    stdout = "".join(m["content"]["text"] for m in iopub if m["msg_type"] == "stream"
                     and m["content"]["name"] == "stdout")
    assert "smoke" in stdout  # the profile's description, printed by the first code cell
    stderr = "".join(m["content"]["text"] for m in iopub if m["msg_type"] == "stream"
                     and m["content"]["name"] == "stderr")
    assert "IProgress not found" not in stderr  # ipywidgets is installed
    widgets = [m for m in iopub if m["msg_type"] == "display_data"
               and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert widgets, "tqdm drew no ipywidgets progress bar"
    images = [m for m in iopub if m["msg_type"] in ("display_data", "execute_result")
              and "image/png" in m["content"]["data"]]
    assert images, "no inline figure in the kernel's output"


# ---------------------------------------------------------------------------------------------------------------
# JupyterLab in a real browser (Debian's chromium driven by playwright)


def _papermill_smoke(lab: Lab, name: str) -> None:
    """Record what the sft notebook needs (base and instruction-tuned records) with papermill, in the lab's tmp
    results; work already recorded by an earlier test is skipped by the notebooks themselves."""
    out = lab.root / "papermill" / f"{name}.ipynb"
    out.parent.mkdir(exist_ok=True)
    proc = subprocess.run([str(BIN / "papermill"), str(REPO / "notebooks" / f"{name}.ipynb"), str(out),
                           "-p", "profile", "smoke", "--log-level", "WARNING"], cwd=REPO, env=lab.env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _chromium(playwright):
    """Launch Debian's chromium headless, or skip the test saying why it cannot run here."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (install it with `apt-get install -y chromium`)")
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
    except Exception as err:  # playwright raises its own Error for every launch failure
        pytest.skip(f"chromium at {CHROMIUM} does not start: {str(err).splitlines()[0]}")


@pytest.mark.slow
def test_jupyterlab_in_a_browser_runs_sft_on_smoke_and_shows_its_figure(lab):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as p:
        browser = _chromium(p)
        try:
            for name in ("pretrain_probe", "instruction_tuning"):
                _papermill_smoke(lab, name)
            figure = lab.root / "figures" / "smoke" / "fig3_sft.png"
            assert not figure.exists()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(f"{lab.url}/lab/tree/notebooks/sft.ipynb?token={lab.token}")
            params = page.locator(".jp-Notebook .jp-CodeCell").filter(has_text='profile: str = "tiny"')
            params.wait_for(timeout=120_000)
            page.locator("#jp-main-statusbar").get_by_text("Idle").first.wait_for(timeout=120_000)  # kernel started
            # below the parameters cell, a cell that sets the profile, as papermill's injected-parameters cell does
            params.locator(".jp-InputPrompt").click()
            page.keyboard.press("b")
            page.keyboard.press("Enter")
            page.keyboard.insert_text('profile = "smoke"')
            page.keyboard.press("Escape")
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            figures = page.locator('.jp-Notebook .jp-OutputArea-output img[src^="data:image/png"]')
            deadline = time.time() + 1800  # 16 min seen on 2 cores shared by several jobs
            while time.time() < deadline and figures.count() < 2:
                errors = page.locator('.jp-Notebook [data-mime-type="application/vnd.jupyter.stderr"]',
                                      has_text="Traceback")
                assert errors.count() == 0, errors.first.inner_text()[-3000:]
                time.sleep(2)
            elapsed = time.perf_counter() - start
            if figures.count():
                figures.last.scroll_into_view_if_needed()
            shot = lab.root / "sft_in_jupyterlab.png"
            page.screenshot(path=str(shot))
            print(f"\nsft on smoke in JupyterLab (chromium): {elapsed:.1f} s; screenshot {shot}")
            assert figures.count() >= 2, f"no figure in the page after {elapsed:.0f} s (screenshot: {shot})"
            assert figures.first.evaluate("img => img.naturalWidth") > 300  # decoded, not a broken image
            # tqdm's bars render as ipywidgets progress bars, driven to completion over the widget comm
            assert page.locator(".jp-Notebook .widget-hprogress .progress-bar-success").count() > 0
            assert figure.stat().st_size > 10_000
        finally:
            browser.close()
