"""The command-line shell shared by segexp's Hydra tools (promote, predict, rerun).

A tool is one function ``action(cfg) -> result`` whose result has ``summary()``;
``hydra_tool`` wraps it in a ``hydra.main`` app over ``conf/<config_name>.yaml``
and returns ``main(argv) -> exit code``: 0 done, the error's own code (2 bad
input or config, 3 where a tool documents it) with one ``segexp: error:`` line
on stderr, 2 when Hydra cannot compose the config (unknown key or option),
1 for anything unexpected.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from segexp.errors import EXIT_USER_ERROR, SegexpError

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def run_hydra_tool(
    app: Callable[[], Any], state: dict[str, Any], argv: Sequence[str] | None
) -> int:
    """Run a ``hydra.main`` app as a CLI: one-line errors and the tool's exit code.

    ``state["code"]`` is set by the task; Hydra's own failure to compose the config
    (unknown key or group option) exits 1 before the task runs and becomes exit 2.
    """
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    state.clear()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if "code" not in state:
            return EXIT_USER_ERROR if code == 1 else code
    return int(state.get("code", 0))


def report_error(state: dict[str, Any], exc: SegexpError) -> None:
    print(f"segexp: error: {exc}", file=sys.stderr)
    state["code"] = exc.exit_code


def hydra_tool(
    config_name: str, action: Callable[[DictConfig], Any]
) -> Callable[[Sequence[str] | None], int]:
    """``main(argv)`` for a tool that runs ``action`` on ``conf/<config_name>.yaml``."""
    state: dict[str, Any] = {}

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    def task(cfg: DictConfig) -> None:
        state["code"] = 1  # the task started: a crash below is a failure, not a config error
        try:
            result = action(cfg)
        except SegexpError as exc:
            report_error(state, exc)
            return
        print(result.summary())
        state["code"] = 0

    def main(argv: Sequence[str] | None = None) -> int:
        return run_hydra_tool(task, state, argv)

    return main
