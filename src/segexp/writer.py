"""The writer process: logs runs to MLflow while the main process fits the next job.

``python -m segexp`` starts it first thing (``WriterClient.start``), so its
slow imports (mlflow, matplotlib) overlap the main process's own (Hydra,
scikit-learn) on a second core, and rendering plots and writing to the store
overlap fitting. On Linux it forks a render helper that shares the plots
(segexp.render_helper); the main process offers it staged runs over a third
pipe. Messages are pickled tuples over the child's stdin; replies come back
over a dedicated pipe. Set ``SEGEXP_WRITER=0`` to log in-process.

Commands: ("open", tracking_uri, experiment), ("parent", run_name, tags),
("log", RunRecord), ("summarize", sweep_id, outcomes_of_unlogged_jobs, options),
("close",). Replies: ("error", message), ("parent", run_id),
("outcome", dict), ("summary", outcomes, parent_run_id).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import subprocess
import sys
import time
from typing import Any, BinaryIO

ENV_SWITCH = "SEGEXP_WRITER"
_NO_RUN_FLAGS = {
    "--help",
    "-h",
    "--hydra-help",
    "--version",
    "--cfg",
    "-c",
    "--info",
    "--shell-completion",
    "-sc",
    "--resolve",
    "--package",
    "-p",
}


class WriterGone(RuntimeError):
    """The writer process exited before it answered."""


class WriterClient:
    """The main process's handle on its writer process."""

    def __init__(
        self, process: subprocess.Popen, replies: BinaryIO, folders_fd: int | None = None
    ) -> None:
        self.process = process
        self._replies = replies
        self._folders_fd = folders_fd  # write end of the render helper's pipe
        self.inbox: list[tuple] = []
        self.gone: str | None = None  # why the writer is gone, once a send or read found it so

    @classmethod
    def start(cls) -> WriterClient:
        from segexp import render_helper

        read_fd, write_fd = os.pipe()
        command = [sys.executable, "-m", "segexp.writer", str(write_fd)]
        passed = [write_fd]
        folders_read = folders_write = None
        if render_helper.wanted():
            folders_read, folders_write = os.pipe()
            os.set_blocking(folders_write, False)  # a full pipe drops an offer, never waits
            command.append(str(folders_read))
            passed.append(folders_read)
        process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=passed)
        for fd in passed:
            os.close(fd)
        return cls(process, os.fdopen(read_fd, "rb"), folders_write)

    @property
    def has_render_helper(self) -> bool:
        return self._folders_fd is not None

    def offer_render(self, folder: str) -> None:
        """Tell the render helper a staged folder is ready (it may draw it before the writer)."""
        if self._folders_fd is None:
            return
        try:
            os.write(self._folders_fd, folder.encode() + b"\n")
        except BlockingIOError:
            pass  # the helper is far behind; the writer draws this one itself
        except OSError:  # no helper (fork failed, or it died): the writer draws everything
            self._close_folders()

    def _close_folders(self) -> None:
        if self._folders_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._folders_fd)
            self._folders_fd = None

    def send(self, *message: Any) -> None:
        try:
            pickle.dump(message, self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WriterGone(self._gone_message()) from exc

    def _gone_message(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = "unknown"
        self.gone = (
            f"the MLflow writer process exited (code {code}) before logging finished; "
            f"rerun with {ENV_SWITCH}=0 to log in the main process"
        )
        return self.gone

    def _read_one(self) -> tuple:
        try:
            return pickle.load(self._replies)
        except (EOFError, pickle.UnpicklingError) as exc:
            raise WriterGone(self._gone_message()) from exc

    def poll(self) -> list[tuple]:
        """Replies that are already waiting, without blocking."""
        while select.select([self._replies], [], [], 0)[0]:
            self.inbox.append(self._read_one())
        return self.inbox

    def wait_for(self, kind: str) -> tuple:
        """Block until a reply of ``kind`` arrives; earlier replies stay in the inbox."""
        while True:
            for i, reply in enumerate(self.inbox):
                if reply[0] == kind:
                    return self.inbox.pop(i)
            self.inbox.append(self._read_one())

    def take(self, kind: str) -> list[tuple]:
        taken = [r for r in self.inbox if r[0] == kind]
        self.inbox = [r for r in self.inbox if r[0] != kind]
        return taken

    def close(self) -> None:
        self._close_folders()  # the helper sees the end of its pipe and exits
        with contextlib.suppress(WriterGone):
            self.send("close")
        if self.process.stdin:
            with contextlib.suppress(OSError):  # a writer that died leaves a broken pipe
                self.process.stdin.close()
        # The writer closes its end of the reply pipe just before os._exit: wait for that,
        # not in Popen.wait(timeout=...), whose polling sleeps up to 50 ms past the exit, and
        # not for the kernel to free the writer's memory, which goes on in parallel. A writer
        # still exiting is reaped by the next Popen, or by init once this process exits.
        fd = self._replies.fileno()
        deadline = time.monotonic() + 60
        while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
            if not os.read(fd, 65536):
                break
        self.process.poll()
        self._replies.close()


ACTIVE: WriterClient | None = None
started_here = False  # a writer was started by this process (jobs run in this process)


def wanted(argv: list[str]) -> bool:
    """A writer helps when this command runs jobs in this process (not --help, not joblib)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    if any(arg in _NO_RUN_FLAGS or arg.startswith("--cfg") for arg in argv):
        return False
    return not any(arg.startswith(("hydra/launcher=", "+hydra/launcher=")) for arg in argv)


def start_if_wanted(argv: list[str]) -> WriterClient | None:
    global ACTIVE, started_here
    if ACTIVE is None and wanted(argv):
        ACTIVE = WriterClient.start()
        started_here = True
    return ACTIVE


def failure() -> str | None:
    """Why this process's writer is gone, if it is (the command then exits 1 with this)."""
    return ACTIVE.gone if ACTIVE is not None else None


def stop() -> None:
    global ACTIVE
    if ACTIVE is not None:
        ACTIVE.close()
        ACTIVE = None


def _serve(reply_fd: int, folders_fd: int | None = None) -> None:  # in the writer process
    # Load MLflow's client and SQL store now, before the first message: the main process
    # only knows the tracking URI once Hydra has composed the config, and these imports
    # (about 2 s) are most of this process's start-up.
    from segexp.gc_tuning import quiet_imports

    with quiet_imports():
        import matplotlib
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        import mlflow.tracking  # noqa: F401

        matplotlib.use("Agg")
        import segexp.plots  # noqa: F401
        import segexp.profiles  # noqa: F401
        from segexp.records import describe_outcome, log_record
        from segexp.render_helper import RenderHelper
        from segexp.sweep_summary import finish_sweep
        from segexp.tracking import Tracker

    # Fork before any store connection or thread exists (see segexp.render_helper).
    helper = None
    if folders_fd is not None:
        helper = RenderHelper.fork(folders_fd, close_in_child=(sys.stdin.fileno(), reply_fd))
    claimant_alive = helper.alive if helper is not None else None

    replies = os.fdopen(reply_fd, "wb")

    def reply(*message: Any) -> None:
        pickle.dump(message, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()

    tracker: Tracker | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    open_error: str | None = None
    logged: list[dict] = []
    source = sys.stdin.buffer
    while True:
        try:
            message = pickle.load(source)
        except EOFError:
            message = ("close",)
        command = message[0]
        if command == "close":
            return
        if command == "open":
            from segexp.errors import SegexpError

            try:
                tracker = Tracker(message[1])
                experiment_id = tracker.experiment_id(message[2])
            except SegexpError as exc:
                open_error = str(exc)
                reply("error", open_error)
        elif command == "parent" and open_error is None:
            parent_run_id = tracker.start_run(experiment_id, message[1], message[2])
            reply("parent", parent_run_id)
        elif command == "log":
            record = message[1]
            if open_error is not None:
                outcome = {
                    "run_name": record.run_name,
                    "run_id": None,
                    "job_num": record.job_num,
                    "status": "invalid",
                    "message": open_error,
                    "metrics": {},
                }
            else:
                outcome = log_record(tracker, record, experiment_id, parent_run_id, claimant_alive)
            logged.append(outcome)
            print(describe_outcome(outcome), flush=True)
            reply("outcome", outcome)
        elif command == "summarize":
            _, sweep_id, others, options = message
            outcomes = sorted(logged + list(others), key=lambda o: o.get("job_num") or 0)
            if open_error is None and parent_run_id is not None:
                finish_sweep(tracker, experiment_id, parent_run_id, sweep_id, outcomes, options)
            reply("summary", outcomes, parent_run_id)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
    # Every write is committed by now. Skip the ~1 s interpreter teardown of mlflow's
    # modules, and close every pipe first: the main process (and whoever reads the
    # command's output) goes on while the kernel frees this process's memory (30-40 ms).
    # The render helper exits by itself once the main process closes its pipe.
    sys.stdout.flush()
    sys.stderr.flush()
    for fd in (0, 1, 2, int(sys.argv[1])):
        with contextlib.suppress(OSError):
            os.close(fd)
    os._exit(0)
