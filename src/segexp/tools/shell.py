"""The command-line shell every segexp tool shares (compare, promote, predict, report, eda, rerun).

A tool is one function ``action(cfg)`` over its composed config
(``pkg://segexp.conf/<config_name>.yaml``, with the user's ``conf/`` in
front). It returns either an object with ``summary()`` (printed, exit 0) or
an exit code (the tool printed its own output). ``hydra_tool`` wraps it in a
``hydra.main`` app and returns ``main(argv) -> exit code``: a ``SegexpError``
is one ``segexp: error:`` line on stderr and the error's own code (2 bad input
or config, 3 where a tool documents it); Hydra's failure to compose the config
(unknown key or option) is exit 2; anything unexpected is 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import hydra
from omegaconf import DictConfig

from segexp.errors import EXIT_USER_ERROR, SegexpError

CONFIG_PATH = "pkg://segexp.conf"


class ToolMain(Protocol):
    """A tool's entry point: ``main(argv=None) -> exit code`` (``None``: ``sys.argv[1:]``)."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def hydra_tool(config_name: str, action: Callable[[DictConfig], Any]) -> ToolMain:
    """``main(argv)`` for a tool that runs ``action`` on ``<config_name>.yaml``."""
    state: dict[str, int] = {}

    @hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)
    def task(cfg: DictConfig) -> None:
        state["code"] = 1  # the task started: a crash below is a failure, not a config error
        try:
            result = action(cfg)
        except SegexpError as exc:
            print(f"segexp: error: {exc}", file=sys.stderr)
            state["code"] = exc.exit_code
            return
        if isinstance(result, int):
            state["code"] = result
            return
        print(result.summary())
        state["code"] = 0

    def main(argv: Sequence[str] | None = None) -> int:
        saved = sys.argv
        sys.argv = [saved[0] if saved else config_name, *(saved[1:] if argv is None else argv)]
        state.clear()
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        try:
            task()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if "code" not in state:  # Hydra could not compose the config
                return EXIT_USER_ERROR if code == 1 else code
        finally:
            sys.argv = saved
        return int(state.get("code", 0))

    return main
