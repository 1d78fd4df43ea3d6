"""The command-line shell every segexp tool shares (compare, promote, predict, report, eda, rerun).

A tool is one function ``action(cfg)`` over its composed config
(``pkg://segexp.conf/<config_name>.yaml``, with the user's ``conf/`` in
front). It returns either an object with ``summary()`` (printed, exit 0) or
an exit code (the tool printed its own output). ``hydra_tool`` wraps it in a
``hydra.main`` app and returns ``main(argv) -> exit code``: a ``SegexpError``
is one ``segexp: error:`` line on stderr and the error's own code (2 bad input
or config, 3 where a tool documents it); Hydra's failure to compose the config
(unknown key or option, unparsable override) is one ``segexp: error:`` line and
exit 2; anything unexpected is 1.

The action may be named instead of passed (``"segexp.tools.promote:promote"``):
its module (scikit-learn, MLflow, matplotlib ...) is then imported only once
Hydra has composed the config, so ``--help`` and a usage error answer in well
under a second. ``promote_main``, ``predict_main`` ... below are such entry
points for every tool (``python -m segexp.tools.shell promote best=silhouette``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import hydra
from omegaconf import DictConfig

from segexp.errors import (
    CONFIG_PATH,
    EXIT_USER_ERROR,
    SegexpError,
    command_overrides,
    composed,
    is_usage_error,
    raising_composition_errors,
    usage_error_line,
)

Action = Callable[[DictConfig], Any]


class ToolMain(Protocol):
    """A tool's entry point: ``main(argv=None) -> exit code`` (``None``: ``sys.argv[1:]``)."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


# ------------------------------------------------------------------------- help

HELP_FLAGS = ("--help", "-h")


def wants_help(args: Sequence[str]) -> bool:
    """``--help``/``-h`` (the app's help; ``--hydra-help`` stays Hydra's)."""
    return any(a in HELP_FLAGS for a in args) and "--hydra-help" not in args


class _LazyHelp(dict):
    """The placeholders of Hydra's help template, each computed only if the template has it
    (Hydra computes every one, listing all of Hydra's own groups: most of a second)."""

    def __init__(self, parts: dict[str, Callable[[], str]]) -> None:
        super().__init__()
        self.parts = parts

    def __missing__(self, key: str) -> str:
        value = self.parts[key]()
        self[key] = value
        return value


def _config_groups(loader, predicate: Callable[[str], bool], parent: str = "") -> list[str]:
    from hydra.core.object_type import ObjectType

    groups = []
    for group in loader.list_groups(parent):
        name = f"{parent}/{group}" if parent else group
        if not predicate(name):
            continue
        if loader.get_group_options(name, ObjectType.CONFIG):
            groups.append(name)
        if loader.get_group_options(name, ObjectType.GROUP):
            groups.extend(_config_groups(loader, predicate, name))
    return groups


def _format_groups(loader, predicate: Callable[[str], bool]) -> str:
    from hydra.core.object_type import ObjectType

    lines = []
    for group in sorted(_config_groups(loader, predicate)):
        options = sorted(loader.get_group_options(group, ObjectType.CONFIG))
        lines.append(f"{group}: {', '.join(options)}")
    return "\n".join(lines) + "\n"


HYDRA_FLAGS = """Hydra's flags:
  --help, -h              this help
  --hydra-help            Hydra's own help
  --cfg, -c {job,hydra,all}  print the composed config instead of running
  --resolve               with --cfg: resolve interpolations
  --package, -p PACKAGE   with --cfg: print only this part of the config
  --info, -i [searchpath|config|defaults|...]  where configs come from, and more
  --multirun, -m          run a sweep (one job per combination of values)
  --config-dir, -cd DIR   add DIR behind the packaged configs
  --shell-completion, -sc install=bash|zsh|fish  shell completion
"""


def app_help(config_name: str, args: Sequence[str], job_name: str) -> str:
    """Hydra's ``--help`` text for the app (its template, config groups and config),
    composed once and listing only the groups the template shows."""
    import copy
    import string

    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    overrides, multirun = command_overrides(args)
    if multirun:  # a sweep's values are not one config: its keys show either way
        overrides = [o for o in overrides if "," not in o]

    def is_hydra(group: str) -> bool:
        return group == "hydra" or group.startswith("hydra/")

    with initialize_config_module(
        CONFIG_PATH[len("pkg://") :], job_name=job_name, version_base="1.3"
    ):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        template = str(cfg.hydra.help.template)
        shown = copy.deepcopy(cfg)
        with open_dict(shown):
            del shown["hydra"]

        parts: dict[str, Callable[[], str]] = {
            "FLAGS_HELP": lambda: HYDRA_FLAGS,
            "APP_CONFIG_GROUPS": lambda: _format_groups(loader, lambda g: not is_hydra(g)),
            "HYDRA_CONFIG_GROUPS": lambda: _format_groups(loader, is_hydra),
            "CONFIG": lambda: OmegaConf.to_yaml(shown, resolve="--resolve" in args),
        }
        return string.Template(template).substitute(_LazyHelp(parts))


def print_help(config_name: str, args: Sequence[str], job_name: str) -> int:
    """Print the app's help; a refused override is the one-line usage error (exit 2)."""
    try:
        text = app_help(config_name, args, job_name)
    except Exception as exc:
        if not is_usage_error(exc):
            raise
        overrides, multirun = command_overrides(args)
        print(usage_error_line(exc, config_name, overrides, multirun), file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `segexp --help | head`: the reader left
        _quiet_broken_pipe()
    return 0


# ------------------------------------------------------------------------ tools


def _load(action: Action | str) -> Action:
    if not isinstance(action, str):
        return action
    module, _, name = action.partition(":")
    return getattr(importlib.import_module(module), name)


def hydra_tool(config_name: str, action: Action | str) -> ToolMain:
    """``main(argv)`` for a tool that runs ``action`` on ``<config_name>.yaml``.

    ``action``: the function, or ``"module:function"`` to import it only when a
    config was composed (the tool's heavy imports stay out of ``--help`` and usage errors).
    """
    state: dict[str, int] = {}

    @hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)
    def task(cfg: DictConfig) -> None:
        composed()
        from segexp.jobs.validation import check_tool_config

        try:  # before the tool's modules (MLflow) load and before any store is opened
            check_tool_config(config_name, cfg)
        except SegexpError as exc:
            print(f"segexp: error: {exc}", file=sys.stderr)
            state["code"] = exc.exit_code
            return
        state["code"] = 1  # the task started: a crash below is a failure, not a config error
        function = _load(action)
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # after MLflow set its own
        try:
            result = function(cfg)
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
        args = list(saved[1:] if argv is None else argv)
        sys.argv = [saved[0] if saved else config_name, *args]
        state.clear()
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        if wants_help(args):
            try:
                return print_help(config_name, args, f"segexp-{config_name}")
            finally:
                sys.argv = saved
        ours = False
        try:
            with raising_composition_errors() as ours:
                task()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if "code" not in state:  # Hydra could not compose the config
                return EXIT_USER_ERROR if code == 1 else code
        except BrokenPipeError:  # `segexp-compare --help | head`: the reader left
            _quiet_broken_pipe()
            return 0
        except Exception as exc:
            if "code" in state or not ours or not is_usage_error(exc):
                raise
            overrides, multirun = command_overrides(args)
            print(usage_error_line(exc, config_name, overrides, multirun), file=sys.stderr)
            return EXIT_USER_ERROR
        finally:
            sys.argv = saved
        return int(state.get("code", 0))

    return main


def _quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so Python's final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# Entry points whose tool module is imported only after the config is composed.
TOOLS: dict[str, tuple[str, str]] = {
    "compare": ("compare", "segexp.tools.compare:run_compare"),
    "promote": ("promote", "segexp.tools.promote:promote"),
    "predict": ("predict", "segexp.tools.predict:predict"),
    "report": ("report", "segexp.tools.report:report_from_config"),
    "eda": ("eda", "segexp.tools.eda:eda"),
    "rerun": ("rerun", "segexp.tools.rerun:rerun"),
}
compare_main = hydra_tool(*TOOLS["compare"])
promote_main = hydra_tool(*TOOLS["promote"])
predict_main = hydra_tool(*TOOLS["predict"])
report_main = hydra_tool(*TOOLS["report"])
eda_main = hydra_tool(*TOOLS["eda"])
rerun_main = hydra_tool(*TOOLS["rerun"])
_MAINS: dict[str, ToolMain] = {
    "compare": compare_main,
    "promote": promote_main,
    "predict": predict_main,
    "report": report_main,
    "eda": eda_main,
    "rerun": rerun_main,
}


def dispatch(argv: Sequence[str] | None = None) -> int:
    """``python -m segexp.tools.shell <tool> [overrides]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in _MAINS:
        print(
            f"usage: python -m segexp.tools.shell {{{','.join(_MAINS)}}} [overrides] "
            "(--help: the tool's config)",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    sys.argv = [f"segexp-{args[0]}", *args[1:]]
    return _MAINS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(dispatch())
