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
import importlib.resources
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
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
    """``--help``, ``-h`` or the bare word ``help`` (no override is a bare word);
    ``--hydra-help`` stays Hydra's."""
    return any(a in HELP_FLAGS or a == "help" for a in args) and "--hydra-help" not in args


WIDTH = 100  # help lines are cut to this many characters
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w.-]*):(.*)$")


def yaml_comments(text: str) -> dict[str, str]:
    """Dotted key -> its comment in a YAML file: the ``#`` lines right above the key, or
    the one after its value. What Hydra's loader drops, read from the file itself."""
    comments: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    above: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = _KEY_LINE.match(line)
        if not match:
            above = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        parents = [(i, k) for i, k in parents if i < indent]
        path = ".".join([k for _, k in parents] + [key])
        parents.append((indent, key))
        inline = rest.partition(" #")[2].strip()
        if inline or above:
            comments[path] = inline or " ".join(above)
        above = []
    return comments


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flat(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): node}


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":")).replace('"', "")
    return str(value)


def _cut(line: str, width: int = WIDTH) -> str:
    """``line`` cut at the last word that fits ``width``, with an ellipsis."""
    if len(line) <= width:
        return line
    return line[: width - 1].rsplit(" ", 1)[0].rstrip(" ,;:(") + "\u2026"


def _two_columns(rows: list[tuple[str, str]], wrap: bool = False) -> list[str]:
    """``  left   right`` lines; right cut to the width, or wrapped (option lists)."""
    pad = min(max((len(left) for left, _ in rows), default=0), 30) + 4
    lines = []
    for left, right in rows:
        head = f"  {left}".ljust(pad)
        if wrap:
            lines += textwrap.wrap(
                right, WIDTH, initial_indent=head, subsequent_indent=" " * pad
            ) or [head]
        elif len(head) > pad:  # a long key=value: its words on the next line
            lines += [_cut(head), _cut(" " * pad + right)] if right else [_cut(head)]
        else:
            lines.append(_cut(head + right))
    return lines


def _config_text(source_path: str, name: str) -> str:
    """The YAML text of ``name`` in a Hydra config source (``pkg://...`` or ``file://...``)."""
    scheme, _, where = source_path.partition("://")
    try:
        if scheme == "pkg":
            return (importlib.resources.files(where) / f"{name}.yaml").read_text()
        if scheme == "file":
            return (Path(where) / f"{name}.yaml").read_text()
    except (OSError, ModuleNotFoundError):
        pass
    return ""


HELP_FOOTER = """Configs: segexp's own (pkg://segexp.conf), behind {user}.
  A file there adds an option or replaces segexp's (conf/data/mine.yaml: data=mine).
  --cfg job prints the whole config; --info searchpath says where each file comes from.
Flags: {sweep}--cfg job|hydra|all, --resolve, --info, --hydra-help;
  shell completion: eval "$({app} -sc install=bash)" (also zsh, fish)."""


def app_help(config_name: str, args: Sequence[str], job_name: str) -> str:
    """One screen: the config's ``hydra.help.header`` (what the command does, examples),
    then its own keys with their defaults and the comment above each in its YAML file,
    the config groups it composes with their options, and where configs come from."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType
    from omegaconf import OmegaConf

    from hydra_plugins.segexp_sweep.user_conf import user_conf_dir

    overrides, multirun = command_overrides(args)
    if multirun:  # a sweep's values are not one config: its keys show either way
        overrides = [o for o in overrides if "," not in o]
    with initialize_config_module(
        CONFIG_PATH[len("pkg://") :], job_name=job_name, version_base="1.3"
    ):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        primary = loader.repository.load_config(config_name)  # type: ignore[attr-defined]
        header = str(cfg.hydra.help.header).rstrip()
        choices = {
            group: str(choice)
            for group, choice in cfg.hydra.runtime.choices.items()
            if not group.startswith("hydra")
        }
        options = {g: sorted(loader.get_group_options(g, ObjectType.CONFIG)) for g in choices}
    own = OmegaConf.to_container(primary.config, resolve=False) if primary else {}
    assert isinstance(own, dict)
    own.pop("hydra", None)
    values = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(values, dict)
    comments = yaml_comments(_config_text(primary.path, config_name)) if primary else {}
    composed_values = _flat(values)  # the command line's overrides included
    keys, described = [], set()
    for key, default in _flat(own).items():
        parent = key.rpartition(".")[0]  # a section's comment goes with its first key
        comment = comments.get(key) or (comments.get(parent, "") * (parent not in described))
        described.add(parent)
        keys.append((f"{key}={_shown(composed_values.get(key, default))}", comment))
    groups = []
    for group, choice in sorted(choices.items()):
        names = [n for n in _flat(values.get(group) or {}) if not n.startswith("_")]
        more = f"; keys: {', '.join(names)}" if 0 < len(names) <= 4 else ""
        groups.append((f"{group}={choice}", ", ".join(options[group]) + more))
    folder = user_conf_dir()
    user = f"your {folder}" if folder else "./conf when it exists (or $SEGEXP_CONF_DIR)"
    parts = [header, "", "Keys (key=value on the command line; the default shown):"]
    parts += _two_columns(keys)
    if groups:
        parts += ["", "Config groups (group=option; the options):", *_two_columns(groups, True)]
    parts += [
        "",
        HELP_FOOTER.format(
            user=user,
            app=job_name,
            sweep="-m (a sweep over a,b values), " * (config_name == "config"),
        ),
    ]
    return "\n".join(parts)


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
