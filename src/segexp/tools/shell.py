"""The shell every Hydra tool shares: ``main(argv) -> exit code`` and ``--help``; a tool's
module is imported only once its config is composed, so help and usage errors are fast."""

from __future__ import annotations

import contextlib
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
from typing import Any

import hydra
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.object_type import ObjectType
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.segexp_sweep.user_conf import user_conf_dir
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
from segexp.jobs.validation import check_tool_config

ToolMain = Callable[..., int]  # main(argv=None) -> exit code; None: sys.argv[1:]
WIDTH = 100  # help lines fit in this many characters
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w.-]*):(.*)$")
HELP_FOOTER = """Configs: segexp's own (pkg://segexp.conf), behind {user}.
  A file there adds an option or replaces segexp's (conf/data/mine.yaml: data=mine).
  --cfg job prints the whole config; --info searchpath says where each file comes from.
Flags: {sweep}--cfg job|hydra|all, --resolve, --info, --hydra-help;
  shell completion: eval "$({app} -sc install=bash)" (also zsh, fish)."""


def wants_help(args: Sequence[str]) -> bool:
    """``--help``, ``-h`` or the bare word ``help``; ``--hydra-help`` stays Hydra's."""
    return any(a in ("--help", "-h", "help") for a in args) and "--hydra-help" not in args


def yaml_comments(text: str) -> dict[str, str]:
    """Dotted key -> the comment above it or after its value (Hydra's loader drops them)."""
    comments: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    above: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            above.append(line.strip().lstrip("#").strip())
            continue
        match = _KEY_LINE.match(line)
        if match:
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
        return {
            k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()
        }
    return {prefix.rstrip("."): node}


def _shown(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return str(value).lower().replace("none", "null")
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":")).replace('"', "")
    return str(value)


def _cut(line: str) -> str:
    """``line`` cut at the last word that fits WIDTH, with an ellipsis."""
    if len(line) <= WIDTH:
        return line
    return line[: WIDTH - 1].rsplit(" ", 1)[0].rstrip(" ,;:(") + "\u2026"


def _two_columns(rows: list[tuple[str, str]], wrap: bool = False) -> list[str]:
    """``  left   right`` lines; right cut to WIDTH, or wrapped (option lists)."""
    pad = min(max((len(left) for left, _ in rows), default=0), 30) + 4
    lines = []
    for left, right in rows:
        head = f"  {left}".ljust(pad)
        if wrap:
            lines += textwrap.wrap(right, WIDTH, initial_indent=head, subsequent_indent=" " * pad)
        elif len(head) > pad:  # a long key=value: its words on the next line
            lines += [_cut(head), _cut(" " * pad + right)] if right else [_cut(head)]
        else:
            lines.append(_cut(head + right))
    return lines


def _config_text(source_path: str, name: str) -> str:
    """The YAML text of ``name`` in a Hydra config source (``pkg://...`` or ``file://...``)."""
    scheme, _, where = source_path.partition("://")
    try:
        if scheme in ("pkg", "file"):
            folder = importlib.resources.files(where) if scheme == "pkg" else Path(where)
            return (folder / f"{name}.yaml").read_text()
    except (OSError, ModuleNotFoundError):
        pass
    return ""


def app_help(config_name: str, args: Sequence[str], job_name: str) -> str:
    """One screen: the config's ``hydra.help.header``, its own keys with their defaults and
    YAML comments, the config groups with their options, and where configs come from."""
    overrides, multirun = command_overrides(args)
    if multirun:  # a sweep's values are not one config: its keys show either way
        overrides = [o for o in overrides if "," not in o]
    with initialize_config_module(
        CONFIG_PATH[len("pkg://") :], job_name=job_name, version_base="1.3"
    ):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        primary = loader.repository.load_config(config_name)  # type: ignore[attr-defined]
        choices = {
            group: str(choice)
            for group, choice in cfg.hydra.runtime.choices.items()
            if not group.startswith("hydra")
        }
        options = {g: sorted(loader.get_group_options(g, ObjectType.CONFIG)) for g in choices}
    own = OmegaConf.to_container(primary.config, resolve=False) if primary else {}
    values = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(own, dict) and isinstance(values, dict)
    own.pop("hydra", None)
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
    parts = [str(cfg.hydra.help.header).rstrip(), ""]
    parts += ["Keys (key=value on the command line; the default shown):", *_two_columns(keys)]
    if groups:
        parts += ["", "Config groups (group=option; the options):", *_two_columns(groups, True)]
    sweep = "-m (a sweep over a,b values), " * (config_name == "config")
    parts += ["", HELP_FOOTER.format(user=user, app=job_name, sweep=sweep)]
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


def hydra_tool(config_name: str, action: str) -> ToolMain:
    """``main(argv)`` running ``"module:function"`` on ``<config_name>.yaml``: its result's
    ``summary()`` (exit 0) or exit code; a SegexpError or a config Hydra refuses: exit 2."""
    state: dict[str, int] = {}

    @hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)
    def task(cfg: DictConfig) -> None:
        composed()
        try:
            check_tool_config(config_name, cfg)  # before MLflow loads and a store is opened
            state["code"] = 1  # the task started: a crash below is a failure, not a config error
            module, _, name = action.partition(":")
            function = getattr(importlib.import_module(module), name)
            logging.getLogger("mlflow").setLevel(logging.WARNING)  # after MLflow set its own
            result = function(cfg)
        except SegexpError as exc:
            print(f"segexp: error: {exc}", file=sys.stderr)
            state["code"] = exc.exit_code
            return
        if not isinstance(result, int):
            print(result.summary())
        state["code"] = result if isinstance(result, int) else 0

    def main(argv: Sequence[str] | None = None) -> int:
        saved = sys.argv
        args = list(saved[1:] if argv is None else argv)
        sys.argv = [saved[0] if saved else config_name, *args]
        state.clear()
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        ours = False
        try:
            if wants_help(args):
                return print_help(config_name, args, f"segexp-{config_name}")
            with raising_composition_errors() as ours:
                task()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if "code" not in state:  # Hydra could not compose the config
                return EXIT_USER_ERROR if code == 1 else code
        except BrokenPipeError:  # `segexp-compare ... | head`: the reader left
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
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# Entry points whose tool module is imported only after the config is composed.
TOOLS: dict[str, tuple[str, str]] = {
    "compare": ("compare", "segexp.tools.compare:run_compare"),
    "promote": ("promote", "segexp.tools.promote:promote"),
    "predict": ("predict", "segexp.tools.predict:predict"),
    "report": ("report", "segexp.tools.report:report_from_config"),
    "eda": ("eda", "segexp.tools.eda:eda"),
    "rerun": ("rerun", "segexp.tools.rerun:rerun"),
}
_MAINS: dict[str, ToolMain] = {name: hydra_tool(*spec) for name, spec in TOOLS.items()}
compare_main = _MAINS["compare"]
promote_main = _MAINS["promote"]
predict_main = _MAINS["predict"]
report_main = _MAINS["report"]
eda_main = _MAINS["eda"]
rerun_main = _MAINS["rerun"]


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
