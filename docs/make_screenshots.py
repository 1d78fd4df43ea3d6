"""Redraw the README's screenshots from the current code: the terminal output of the README
sweep and the MLflow UI page its last line opens.

Runs ``segexp -m algo=kmeans,gmm,dbscan k=4..6`` in a temporary folder, renders its output
as a terminal page, starts ``mlflow server`` on the sweep's store (127.0.0.1, a free port),
and takes both screenshots with headless Chromium:

    python docs/make_screenshots.py   # docs/terminal-sweep.png, docs/mlflow-ui-runs.png
"""

from __future__ import annotations

import html
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SWEEP = ["-m", "algo=kmeans,gmm,dbscan", "k=4..6"]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        sys.exit("headless Chromium is needed (apt-get install -y chromium)")
    return found


def screenshot(url: str, out: Path, size: str, work: Path) -> None:
    profile = work / f"profile-{out.stem}"
    subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000",
         f"--window-size={size}", f"--screenshot={out}", url],
        check=True, capture_output=True, timeout=180, env={**os.environ, "HOME": str(work)},
    )  # fmt: skip


def terminal_page(command: str, output: str) -> str:
    body = html.escape(f"$ segexp {command}\n{output}")
    return (
        "<html><body style='margin:0;background:#1e1e1e'><pre style='margin:0;padding:18px;"
        "color:#e6e6e6;font:13px/1.35 DejaVu Sans Mono,monospace;white-space:pre-wrap'>"
        f"{body}</pre></body></html>"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "COLUMNS": "120", "MLFLOW_DISABLE_TELEMETRY": "true"}
        result = subprocess.run(
            [sys.executable, "-m", "segexp", *SWEEP], cwd=work, env=env,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        output = result.stdout + result.stderr
        url = next(w for w in output.split() if "/#/experiments/" in w)
        page = work / "terminal.html"
        page.write_text(terminal_page(" ".join(SWEEP), output))
        lines = output.count("\n") + 2
        screenshot(page.as_uri(), DOCS / "terminal-sweep.png", f"1100,{lines * 18 + 40}", work)

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(port), "--workers", "1", "--backend-store-uri",
             f"sqlite:///{work / 'mlflow.db'}"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, start_new_session=True,
        )  # fmt: skip
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            ui = url.replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}")
            screenshot(ui, DOCS / "mlflow-ui-runs.png", "1900,700", work)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"wrote {DOCS / 'terminal-sweep.png'} and {DOCS / 'mlflow-ui-runs.png'}")


if __name__ == "__main__":
    main()
