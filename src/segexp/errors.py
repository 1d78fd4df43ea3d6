"""Every error segexp reports to its users (one ``segexp: error:`` line, exit code 2 unless
the class says otherwise), and the one formatter of Hydra's and OmegaConf's refusals."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import re
import sys
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

EXIT_USER_ERROR = 2
CONFIG_PATH = "pkg://segexp.conf"
_FULL_ERROR = "HYDRA_FULL_ERROR"
_SET_BY_SEGEXP = "SEGEXP_SET_HYDRA_FULL_ERROR"  # HYDRA_FULL_ERROR is segexp's, not the user's
_MAX_LISTED = 24  # available keys or options named in a usage error
_KIND_WORDS = {
    bool: "true or false",
    str: "a text",
    list: "a list like [a,b]",
    dict: "a mapping like {key: value}",
}


class SegexpError(Exception):
    """A mistake in the user's input or configuration; its message is one line."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(SegexpError):
    """A config key or command-line value is not allowed."""


class RangeSyntaxError(ConfigError):
    """A ``key=A..B[:STEP]`` range on the command line is malformed."""


class DataError(SegexpError):
    """The data file or table cannot be used as it is."""


class TrackingError(SegexpError):
    """The MLflow store, run or model the command refers to does not exist."""


class EmptyLeaderboardError(TrackingError):
    """Nothing to rank: no runs, or none passes the filters. Exit code 1, not a user error."""

    exit_code = 1


class StoreWriteError(TrackingError):
    """The store refused a run's writes: the command stops rather than report unstored runs."""

    exit_code = 1


class ValidationFailed(SegexpError):
    """The registered version does not reproduce its run's segments; the alias did not move."""

    exit_code = 3


class RerunFailed(SegexpError):
    """The re-run failed or assigned different segments."""

    exit_code = 1


class DataChanged(SegexpError):
    """The data's fingerprint differs from the original run's: segments are not comparable."""

    exit_code = 3


class RunFailed(SegexpError):
    """``segexp.run``/``segexp.sweep`` did not succeed; carries the command's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self):  # picklable with its exit code
        return (type(self), (str(self), self.exit_code))


def stop(message: str, code: int = EXIT_USER_ERROR) -> SystemExit:
    """``segexp: error: <message>`` printed; the SystemExit ending the command with ``code``
    (a SystemExit: Hydra reports a callback's Exception as a mere warning)."""
    print(f"segexp: error: {message}", file=sys.stderr)
    return SystemExit(code)


def first_line(exc: BaseException) -> str:
    """The first line of a library's error, for a one-line message (its type if empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ----------------------------------------------- Hydra's and OmegaConf's refusals


@contextlib.contextmanager
def raising_composition_errors() -> Iterator[bool]:
    """Hydra raises (rather than prints) its errors before the task: HYDRA_FULL_ERROR set
    until ``composed``; yields whether segexp set it (a user's own keeps Hydra's errors)."""
    if os.environ.get(_FULL_ERROR):
        yield False
        return
    os.environ.update({_FULL_ERROR: "1", _SET_BY_SEGEXP: "1"})
    try:
        yield True
    finally:
        composed()


def composed() -> None:
    """The command's config is composed: from here on Hydra reports errors as usual."""
    if os.environ.pop(_SET_BY_SEGEXP, None):
        os.environ.pop(_FULL_ERROR, None)


def is_usage_error(exc: BaseException) -> bool:
    """Hydra's or OmegaConf's refusal, or a config file that is not plain YAML."""
    return isinstance(exc, HydraException | OmegaConfBaseException | yaml.YAMLError)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a config file YAML refuses; a tag that would run code is named as such."""
    mark = getattr(exc, "problem_mark", None)
    where = "a config file"
    if mark is not None:
        path = Path(mark.name)
        with contextlib.suppress(ValueError):
            path = path.resolve().relative_to(Path.cwd())
        where = f"{path} line {mark.line + 1}"
    problem = str(getattr(exc, "problem", None) or first_line(exc))
    tag = re.search(r"tag '([^']+)'", problem)
    if tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return (
            f"{where}: the tag {name} is not allowed; configs are plain YAML (numbers, text, "
            "lists, mappings) and segexp runs no code from them (nothing was run); remove "
            "the tag, or name a class with _target_: package.Class"
        )
    return f"{where}: not valid YAML ({_one_line(problem)}); fix the file"


def _one_line(text: str) -> str:
    return "; ".join(p.strip() for p in str(text).splitlines() if p.strip())


def listed(names: Sequence[str]) -> str:
    more = len(names) - _MAX_LISTED
    return ", ".join(list(names)[:_MAX_LISTED]) + (f", ... ({more} more)" if more > 0 else "")


def default_config(config_name: str, overrides: Sequence[str], multirun: bool):
    """The command's config without the refused overrides (for the keys a hint names)."""
    if GlobalHydra.instance().is_initialized():
        return None
    # Sweeps (-m k=3,4) cannot be composed as one config: their keys exist either way.
    plain = [o for o in overrides if not (multirun and "," in o)]
    with initialize_config_module(CONFIG_PATH[len("pkg://") :], version_base="1.3"):
        for attempt in (plain, []):
            try:
                return compose(config_name, overrides=list(attempt))
            except Exception:  # another bad override: try the packaged defaults
                continue
    return None


def _available_keys(cfg, key: str) -> tuple[str, list[str]]:
    """(the deepest existing node on ``key``'s path, the keys under it)."""
    parts = key.split(".")
    node, where = cfg, ""
    for i, part in enumerate(parts[:-1]):
        child = OmegaConf.select(node, part, default=None) if OmegaConf.is_dict(node) else None
        if not OmegaConf.is_dict(child):
            break
        node, where = child, ".".join(parts[: i + 1])
    keys = [str(k) for k in node] if OmegaConf.is_dict(node) else []
    if not where:
        keys = [k for k in keys if k != "hydra"]
    return where, keys


def shown(value: Any) -> str:
    """A value as the user typed it: null, true, 3, 0.5, 'abc', [1, 2]."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # -5, not -5.0: OmegaConf made the user's -5 a float
    return str(value)


def _bounds(meta: typing.Mapping[str, Any]) -> str:
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if low is not None and high is not None:
        return f"from {low} to {high}"
    lower = f"> {above}" if above is not None else f">= {low}" if low is not None else ""
    return " and ".join(filter(None, [lower, f"<= {high}" if high is not None else ""]))


def _fields(schema: Any) -> dict[str, dataclasses.Field]:
    return (
        {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    )


def allowed_words(schema: Any, name: str) -> str:
    """What the field ``name`` of a structured config allows, in words (type and metadata)."""
    if name not in _fields(schema):
        return "a valid value"
    meta, hint = _fields(schema)[name].metadata, typing.get_type_hints(schema)[name]
    optional = type(None) in typing.get_args(hint)
    kind = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if "choices" in meta:
        words = "one of " + ", ".join(shown(c) for c in meta["choices"])
    elif "text" in meta:
        words = meta["text"]
    elif kind in (int, float):
        words = " ".join(filter(None, ["an integer" if kind is int else "a number", _bounds(meta)]))
    elif dataclasses.is_dataclass(kind):
        words = f"a section with the keys {', '.join(_fields(kind))}"
    else:
        words = _KIND_WORDS.get(typing.get_origin(kind) or kind, "a value")
    return words + (" or null" if optional else "")


_RECEIVED = re.compile(
    r"Value '(?P<value>.*?)'"
    r"(?: of type '(?P<type>\w+)'| is not a valid bool \(type (?P<bool>\w+)\))"
    r"|value: (?P<assigned>.*)$",
    re.S,
)


def _omegaconf_error(exc: BaseException | None) -> OmegaConfBaseException | None:
    """The OmegaConf error behind Hydra's (its cause, or the error it was raised from)."""
    for _ in range(5):
        if (
            exc is None
            or isinstance(exc, OmegaConfBaseException)
            and getattr(exc, "full_key", None)
        ):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def unknown_key_line(
    key: str, names: Sequence[str], where: str | None = None, what: str = "no such config key"
) -> str:
    """``<key>: no such config key (did you mean ...?); available under <where>: <names>``
    (``where``: the section holding ``names``, by default ``key``'s parent)."""
    where = key.rpartition(".")[0] if where is None else where
    leaf = key[len(where) + 1 :] if where else key
    near = difflib.get_close_matches(leaf.split(".")[0], names, n=1)
    hint = f" (did you mean {'.'.join(filter(None, [where, near[0]]))}?)" if near else ""
    under = f" under {where}" if where and what == "no such config key" else ""
    return f"{key}: {what}{hint}; available{under}: {listed(names)}"


def omegaconf_line(error: OmegaConfBaseException, typed: str | None = None) -> str:
    """``<key>: <what is allowed>; got <value>`` (or the unknown-key line) for OmegaConf's
    refusal; ``typed``: the value as typed, where OmegaConf's message does not say it."""
    key = str(error.full_key)
    leaf = key.rpartition(".")[2]
    schema = error.object_type
    message = first_line(Exception(getattr(error, "msg", "") or str(error)))
    if isinstance(error, ConfigKeyError | ConfigAttributeError) and " not in " in message:
        return unknown_key_line(key, list(_fields(schema)))
    received = _RECEIVED.search(message)
    if "None" in message or "not Optional" in message:
        got = "null"
    elif received is not None and received["assigned"] is not None:
        got = received["assigned"].strip()
    elif received is not None:
        quoted = "str" in (received["type"], received["bool"])
        got = repr(received["value"]) if quoted else received["value"]
    elif typed is not None:
        got = typed if re.fullmatch(r"-?[\d.]+|true|false|null|[\[{].*", typed) else repr(typed)
    else:
        return f"{key}: {message}"
    allowed = allowed_words(schema, leaf)
    if not dataclasses.is_dataclass(schema) and ("List" in message or "Dict" in message):
        allowed = _KIND_WORDS[list if "List" in message else dict]
    return f"{key}: {allowed}; got {got}"


def usage_error_line(
    exc: BaseException, config_name: str, overrides: Sequence[str] = (), multirun: bool = False
) -> str:
    """One ``segexp: error:`` line for Hydra's or OmegaConf's refusal of a command or config."""
    message = str(exc)
    if isinstance(exc, yaml.YAMLError):
        return f"segexp: error: {yaml_problem(exc)}"
    if isinstance(exc, OverrideParseException):
        detail = _one_line(exc.message).replace(f"Error parsing override '{exc.override}'", "")
        detail = detail.strip("; ")
        return (
            f"segexp: error: {exc.override}: cannot parse this override"
            + (f" ({detail})" if detail else "")
            + "; write key=value, key=a,b for a sweep with -m, or quote values with spaces"
        )
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        options = sorted(str(o) for o in (exc.options or []))
        if group and options:
            near = difflib.get_close_matches(option, options, n=1)
            hint = f" (did you mean {group}={near[0]}?)" if near else ""
            return (
                f"segexp: error: {group}={option}: no such option{hint}; "
                f"available: {listed(options)}"
            )
        return f"segexp: error: {_one_line(message)}"
    unknown = re.match(r"Could not override '([^']+)'", message)
    if unknown:
        key = unknown.group(1)
        refused = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
        cfg = default_config(config_name, refused, multirun)
        if cfg is None:
            return f"segexp: error: {key}: no such config key"
        where, names = _available_keys(cfg, key)
        return f"segexp: error: {unknown_key_line(key, names, where)}"
    error = _omegaconf_error(exc)
    if error is not None:
        typed = re.match(r"Error merging override [^=]+=(.*)", message, re.S)
        return f"segexp: error: {omegaconf_line(error, typed and typed.group(1).strip())}"
    cause = exc.__cause__
    detail = _one_line(message)
    if cause is not None and str(cause) and str(cause) not in message:
        detail += f" ({_one_line(str(cause))})"
    return f"segexp: error: {detail}"


def command_overrides(args: Sequence[str]) -> tuple[list[str], bool]:
    """The command line's overrides (no flags), and whether it asks for a multirun."""
    multirun = any(a in ("-m", "--multirun") for a in args)
    return [a for a in args if not a.startswith("-") and "=" in a], multirun
