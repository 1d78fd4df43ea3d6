"""The writer's forked render helper, and taking over a folder whose claimant died."""

import os
import signal
import time
from pathlib import Path

import pytest

from segexp import records, render_helper
from segexp.records import ArtifactTask, stage_tasks

pytestmark = pytest.mark.skipif(not render_helper.wanted(), reason="fork helper is Linux-only")


def draw_marker(folder: Path, name: str, delay: float = 0.0) -> None:
    """A stand-in for a plot: records which process drew it."""
    time.sleep(delay)
    (Path(folder) / name).write_text(str(os.getpid()))


def _wait_for_exit(helper, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while helper.alive():
        assert time.monotonic() < deadline, "the helper did not exit at the end of its pipe"
        time.sleep(0.01)


def _staged(tmp_path, name, delay=0.0) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    stage_tasks(folder, [ArtifactTask(f"{__name__}:draw_marker", {"name": "plot", "delay": delay})])
    return folder


def test_helper_draws_offered_folders_newest_first_and_exits_at_end_of_offers(tmp_path):
    folders = [_staged(tmp_path, f"run{i}", delay=0.05) for i in range(3)]
    read_fd, write_fd = os.pipe()
    helper = render_helper.RenderHelper.fork(read_fd, close_in_child=(write_fd,))
    os.write(write_fd, b"".join(str(f).encode() + b"\n" for f in folders))
    deadline = time.monotonic() + 30
    while not all((f / records._DONE).exists() for f in folders):
        assert time.monotonic() < deadline, "the helper did not draw every offered folder"
        time.sleep(0.01)
    drawn_at = {f: (f / "plot").stat().st_mtime_ns for f in folders}
    assert all((f / "plot").read_text() == str(helper.pid) for f in folders)
    assert drawn_at[folders[2]] < drawn_at[folders[1]] < drawn_at[folders[0]]  # newest first
    assert helper.alive()
    os.close(write_fd)  # no more offers: the helper exits
    _wait_for_exit(helper)


def test_writer_takes_over_a_folder_whose_claimant_died(tmp_path):
    folder = _staged(tmp_path, "run0")
    pid = os.fork()
    if pid == 0:  # a claimant that dies holding the claim, before drawing
        os.close(os.open(folder / records._CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    assert (folder / records._CLAIM).exists() and not (folder / "plot").exists()
    started = time.monotonic()
    records._finish_rendering(folder, claimant_alive=lambda: False)
    assert time.monotonic() - started < 5
    assert (folder / "plot").read_text() == str(os.getpid())


def test_a_live_claimant_is_waited_for(tmp_path):
    folder = _staged(tmp_path, "run0", delay=0.3)
    read_fd, write_fd = os.pipe()
    helper = render_helper.RenderHelper.fork(read_fd, close_in_child=(write_fd,))
    os.write(write_fd, str(folder).encode() + b"\n")
    while not (folder / records._CLAIM).exists():
        time.sleep(0.005)
    records._finish_rendering(folder, claimant_alive=helper.alive)
    assert (folder / "plot").read_text() == str(helper.pid)
    os.close(write_fd)
    _wait_for_exit(helper)
