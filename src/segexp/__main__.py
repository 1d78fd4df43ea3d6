"""``python -m segexp`` and the ``segexp`` command: one run, or a sweep with ``-m``.

This module stays light: the processes of the publishing pool import the
command's main module when they start. The app loads only Hydra until the
config is composed, so ``--help`` and usage errors answer at once.

The publishing pool's forkserver takes about two seconds to load MLflow and
matplotlib, and it holds the command's output open while it does. So it is
started here, before anything else, only for a command line that looks like a
run: no help or info flag, every override's top-level key a key of the packaged
config or a config group, every ``group=option`` an existing option. A command
that looks wrong starts the pool only once Hydra has composed its config
(``segexp.jobs.callbacks.prepare``), and a usage error then never waits for it.
"""

import os
import sys
from importlib import resources
from pathlib import Path

_NO_RUN_FLAGS: tuple[str, ...] = ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c")
_NO_RUN_FLAGS += ("--shell-completion", "-sc", "--resolve", "--package", "-p")
_PAIRS = (("[", "]"), ("(", ")"), ("{", "}"))


def _conf_folders() -> list:
    """The user's config folder (``$SEGEXP_CONF_DIR``, else ``./conf``) then the packaged one."""
    folders: list = []
    configured = os.environ.get("SEGEXP_CONF_DIR")
    local = Path(configured).expanduser() if configured else Path.cwd() / "conf"
    if local.is_dir():
        folders.append(local)
    folders.append(resources.files("segexp.conf"))
    return folders


def _load_yaml(text: str):
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _has(tree, dotted: str) -> bool:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class _Glance:
    """The packaged config and its groups as files say them (no Hydra composition)."""

    def __init__(self) -> None:
        self.folders = _conf_folders()
        self.config = _load_yaml(self.folders[-1].joinpath("config.yaml").read_text()) or {}
        self.groups: dict[str, set[str]] = {}
        for folder in self.folders:
            for entry in folder.iterdir():
                if entry.is_dir() and entry.name not in ("hydra", "__pycache__"):
                    options = {f.name[: -len(".yaml")] for f in entry.iterdir()}
                    self.groups.setdefault(entry.name, set()).update(options)
        self.defaults: dict[str, str] = {}
        for item in self.config.get("defaults") or []:
            if isinstance(item, dict):
                self.defaults.update({str(k): str(v) for k, v in item.items()})

    def option(self, group: str, name: str):
        """The option's YAML (the user's file first); None when it cannot be told."""
        for folder in self.folders:
            entry = folder.joinpath(group).joinpath(f"{name}.yaml")
            if entry.is_file():
                text = entry.read_text()
                if "@package" in text:
                    return None
                data = _load_yaml(text)
                if not isinstance(data, dict) or "defaults" in data:
                    return None
                return data
        return None

    def knows(self, key: str, value: str, chosen: dict[str, list[str]]) -> bool:
        top, _, rest = key.partition(".")
        if top in self.groups:
            if not rest:
                choices = [v.strip() for v in value.split(",")]
                return "(" in value or set(choices) <= self.groups[top]
            options = chosen.get(top) or [self.defaults.get(top, "")]
            trees = [self.option(top, name) for name in options]
            return any(tree is None or _has(tree, rest) for tree in trees)
        return _has(self.config, key)


def _balanced(value: str) -> bool:
    if any(value.count(a) != value.count(b) for a, b in _PAIRS):
        return False
    return value.count("'") % 2 == 0 and value.count('"') % 2 == 0


def looks_like_a_run(args: list[str]) -> bool:
    """The command line runs jobs as far as a glance at the config files can tell.

    A glance, not Hydra: it may say yes to a command Hydra refuses (that usage error
    then waits for the pool to load) or no to one Hydra runs (the pool then starts a
    moment later, once Hydra has composed the config).
    """
    if any(a in _NO_RUN_FLAGS or a.startswith(("--cfg=", "--info=")) for a in args):
        return False
    try:
        from segexp.jobs.ranges import expand_argv

        args = expand_argv(args)
        from segexp.jobs.validation import check_sweep_before_hydra

        check_sweep_before_hydra(args)  # a sweep over limits.max_jobs: refused at once
        glance = _Glance()
        overrides = [a.partition("=") for a in args if not a.startswith("-") and "=" in a]
        chosen = {
            key: [v.strip() for v in value.split(",")]
            for key, _, value in overrides
            if key in glance.groups
        }
        for key, _, value in overrides:
            if not _balanced(value):
                return False
            if key.startswith(("+", "~")) or key.startswith("hydra") or "/" in key:
                continue  # additions, deletions and Hydra's own settings: Hydra decides
            if not glance.knows(key.split("@", 1)[0], value, chosen):
                return False
    except Exception:  # a malformed range, an unreadable file: let Hydra say
        return False
    return True


def _asks_verbose(args: list[str]) -> bool:
    """``verbose=true`` (or 1, yes, on) on the command line: the last one wins."""
    values = [a.partition("=")[2] for a in args if a.lstrip("+").startswith("verbose=")]
    return bool(values) and values[-1].strip().lower() in ("true", "1", "yes", "on")


def main() -> int:
    args = sys.argv[1:]
    if looks_like_a_run(args):
        from segexp.jobs import publish

        if _asks_verbose(args):  # the pool's workers read it when they start
            os.environ["SEGEXP_VERBOSE"] = "1"
        publish.start_pool()  # its workers load MLflow while this process loads the app
    from segexp.jobs.app import main as run_app

    return run_app(pool=True)


if __name__ == "__main__":
    sys.exit(main())
