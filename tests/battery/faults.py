"""Faults the battery plants around a command: tiny HTTP servers on 127.0.0.1 that
misbehave as a tracking server might, and a store lock held by another process."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

Answer = Callable[[BaseHTTPRequestHandler, threading.Event], None]


@contextmanager
def http_server(answer: Answer) -> Iterator[tuple[str, list[str]]]:
    """A threaded server on 127.0.0.1 answering every GET and POST with ``answer``;
    yields its URL and the paths it was asked for (what reached it)."""
    asked: list[str] = []
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            answer(self, stop)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        stop.set()  # hanging answers return
        server.shutdown()
        server.server_close()


def reply(handler: BaseHTTPRequestHandler, code: int, body: bytes = b"OK", **headers: str):
    handler.send_response(code)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def health_only(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """``/health`` answers OK at once; the API never answers (until the server stops)."""
    if handler.path.rstrip("/") == "/health":
        reply(handler, 200)
    else:
        stop.wait(600)


def redirect_to(url: str) -> Answer:
    """Every request answered 307 to the same path on ``url`` (another server)."""

    def answer(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        reply(handler, 307, b"", Location=url.rstrip("/") + handler.path)

    return answer


def record_only(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """Answers 200 to anything: a server that would take the run if asked."""
    reply(handler, 200, b"{}", **{"Content-Type": "application/json"})


_HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@contextmanager
def lock_held(lock_file: Path, seconds: float = 120, same_command: bool = False) -> Iterator[int]:
    """Another command holds ``lock_file`` (filelock, as a store being created does) for
    ``seconds`` or until the block ends; yields its pid. ``same_command``: the holder stays in
    the test's process group, as a sibling worker of one command would."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(lock_file), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=not same_command,  # a command of its own, as from another terminal
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
