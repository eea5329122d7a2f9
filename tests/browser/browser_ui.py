"""What the browser tests do with a Jupyter server and its pages, as a person would.

:class:`JupyterServer` starts ``jupyter lab`` on localhost (a free port, a random token, no
browser, ``--allow-root`` as root), with its own configuration, settings, workspaces and
runtime folders, so that nothing of the machine's Jupyter set-up leaks in or is written to. The
one server serves JupyterLab 4 (``/lab``), Notebook 7 (``/notebooks``) and nbgrader's pages
(``/formgrader``).

:class:`NotebookUI` drives an open notebook in either front end: it selects cells, runs them
with Shift+Enter, types into the cell editor (CodeMirror 6 in both) and presses nbgrader's
Validate button; both front ends share JupyterLab's cell widgets and class names.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: How long a server may take to answer (a loaded CI machine starts Jupyter slowly).
SERVER_START_SECONDS = 180
#: How long one cell may run in the browser tests (the checks' large cases take seconds).
CELL_SECONDS = 240
#: How long nbgrader's Validate may take: it runs the whole notebook in a new kernel.
VALIDATE_SECONDS = 420


@dataclass
class Tab:
    """A browser page and what its scripts said: console messages and uncaught errors."""

    page: object  # playwright.sync_api.Page
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """The environment without the caller's Python, virtualenv and Jupyter settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "IPYTHON", "MPL", "BACKPROP"))
    }


@dataclass
class JupyterServer:
    """A ``jupyter lab`` server of one environment, serving ``root`` on localhost.

    Started by :meth:`start`, stopped (its kernels too) by :meth:`stop`. ``state`` holds its
    private Jupyter folders and its log."""

    jupyter: Path  # the environment's `jupyter` command
    root: Path  # the folder it serves (also its working directory, where nbgrader looks for its config)
    state: Path
    port: int = 0
    token: str = ""
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.state / "server.log"

    def url(self, path: str) -> str:
        """The address of ``path`` (``lab/tree/...``, ``notebooks/...``, ``formgrader``) with the token."""
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def start(self) -> JupyterServer:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        folders = {
            name: self.state / name
            for name in ("config", "data", "runtime", "ipython", "mpl", "settings", "workspaces")
        }
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        # No "would you like news?" toast over the pages.
        news = folders["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = _clean_env() | {
            "JUPYTER_CONFIG_DIR": str(folders["config"]),
            "JUPYTER_DATA_DIR": str(folders["data"]),
            "JUPYTER_RUNTIME_DIR": str(folders["runtime"]),
            "IPYTHONDIR": str(folders["ipython"]),
            "MPLCONFIGDIR": str(folders["mpl"]),
            "JUPYTERLAB_SETTINGS_DIR": str(folders["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(folders["workspaces"]),
            "PATH": f"{self.jupyter.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "OPENBLAS_NUM_THREADS": "1",
        }
        command = [
            str(self.jupyter),
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer in {SERVER_START_SECONDS} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the server and everything it started (its kernels are in its session)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


# ----------------------------------------------------------------------------------------
# A notebook open in JupyterLab 4 or Notebook 7
# ----------------------------------------------------------------------------------------

#: The notebook on show: JupyterLab keeps the other open notebooks' panels in the page, hidden.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


class NotebookUI:
    """An open notebook in JupyterLab 4 (``ui="lab"``) or Notebook 7 (``ui="notebook"``)."""

    def __init__(self, tab: Tab, server: JupyterServer, path: str, ui: str, cells: int) -> None:
        self.tab, self.page, self.server, self.path, self.ui = tab, tab.page, server, path, ui
        self.expected_cells = cells

    def open(self) -> NotebookUI:
        """Open the notebook and wait for all its cells and an idle kernel."""
        # ?reset: a new JupyterLab workspace, without the notebooks an earlier test left open.
        where = f"lab/tree/{self.path}?reset" if self.ui == "lab" else f"notebooks/{self.path}"
        self.page.goto(self.server.url(where))
        self.page.wait_for_function(
            "([panel, n]) => document.querySelectorAll(`${panel} .jp-Notebook .jp-Cell`).length >= n",
            arg=[PANEL, self.expected_cells],
            timeout=SERVER_START_SECONDS * 1000,
        )
        self.page.wait_for_selector(
            f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=SERVER_START_SECONDS * 1000
        )
        return self

    def cell(self, index: int):
        return self.page.locator(f"{PANEL} .jp-Notebook .jp-Cell").nth(index)

    def _prompt(self, index: int) -> str:
        prompt = self.cell(index).locator(".jp-InputPrompt")
        return prompt.inner_text() if prompt.count() else ""

    def _is_code(self, index: int) -> bool:
        return "jp-CodeCell" in (self.cell(index).get_attribute("class") or "")

    def run(self, index: int) -> None:
        """Select cell ``index`` and press Shift+Enter; for a code cell wait until it has run
        (its prompt shows a new execution count)."""
        before = self._prompt(index)
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").click() if self._is_code(index) else cell.click()
        self.page.keyboard.press("Escape")  # command mode, whatever the click did
        self.page.keyboard.press("Shift+Enter")
        if not self._is_code(index):
            return
        self.page.wait_for_function(
            """([panel, i, before]) => {
                const cell = document.querySelectorAll(`${panel} .jp-Notebook .jp-Cell`)[i];
                const p = cell.querySelector('.jp-InputPrompt');
                const t = p ? p.textContent : '';
                return /\\[\\d+\\]/.test(t) && t !== before;
            }""",
            arg=[PANEL, index, before],
            timeout=CELL_SECONDS * 1000,
        )

    def run_through(self, last: int) -> None:
        """Run cells 0 to ``last`` in order, as a student pressing Shift+Enter does."""
        for index in range(last + 1):
            self.run(index)

    def type_into(self, index: int, source: str) -> None:
        """Replace the source of cell ``index`` by typing into its editor (select all, type)."""
        editor = self.cell(index).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("Control+a")
        # One text insertion, as a paste or an input method commits it: CodeMirror's automatic
        # indentation and bracket closing, which act on key presses, leave the text as it is.
        self.page.keyboard.insert_text(source.rstrip("\n"))
        self.page.keyboard.press("Escape")

    def source(self, index: int) -> str:
        """The cell's source as its editor shows it."""
        lines = self.cell(index).locator(".cm-content .cm-line").all_inner_texts()
        return "\n".join(lines).replace("\u200b", "")

    def output_text(self, index: int) -> str:
        area = self.cell(index).locator(".jp-OutputArea")
        return area.inner_text() if area.count() else ""

    def shown_images(self, index: int) -> list[tuple[int, int]]:
        """(width, height) in pixels of each image in the cell's output that has loaded and is visible."""
        return self.cell(index).evaluate(
            """c => [...c.querySelectorAll('.jp-OutputArea-output img')]
                .filter(img => img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().height > 0)
                .map(img => [img.naturalWidth, img.naturalHeight])"""
        )

    def validate(self) -> str:
        """Press nbgrader's Validate button; the text of the dialog it opens (then closed)."""
        self.page.locator(f"{PANEL} .validate-button").first.click()
        dialog = self.page.locator(".jp-Dialog").filter(has_text="Validation Results")
        dialog.wait_for(timeout=VALIDATE_SECONDS * 1000)
        text = dialog.locator(".jp-Dialog-body").inner_text()
        dialog.locator(".jp-Dialog-button").last.click()
        return text
