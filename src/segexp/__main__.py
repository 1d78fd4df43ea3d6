"""``segexp``: one run, or a sweep with ``-m``; ``k=3..8`` is expanded before Hydra reads
the command line. Exit codes: 0 done, 1 a job failed or the store stopped taking runs, 2 bad
input or configuration, 130/143 stopped by SIGINT/SIGTERM."""

import os
import sys
from collections.abc import Sequence

import yaml

from segexp.errors import (
    EXIT_USER_ERROR,
    SegexpError,
    command_overrides,
    is_usage_error,
    raising_composition_errors,
    usage_error_line,
    yaml_problem,
)
from segexp.jobs.app import CONFIG_NAME, task
from segexp.jobs.ranges import expand_argv
from segexp.jobs.signals import stop_signals
from segexp.jobs.validation import check_command_before_hydra
from segexp.tools.init import main as init_main
from segexp.tools.shell import print_help, wants_help

SWEEP_ENV = "SEGEXP_SWEEP"  # segexp.jobs.callbacks.ENV_VAR: the sweep this command has open


def _refuse(message: str, code: int) -> int:
    print(f"segexp: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the app on ``argv`` (default: the command line); return the process exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["init"]:  # segexp init [FOLDER] [data.path=FILE]: a starter project
        return init_main(args[1:])
    try:
        check_command_before_hydra(args, CONFIG_NAME)  # k=1..10**12 is refused, never listed
        args = expand_argv(args)
    except SegexpError as exc:
        return _refuse(str(exc), exc.exit_code)
    except yaml.YAMLError as exc:  # the user's conf/config.yaml
        return _refuse(yaml_problem(exc), EXIT_USER_ERROR)
    if wants_help(args):
        return print_help(CONFIG_NAME, args, "segexp")
    saved_argv = sys.argv
    sys.argv = [saved_argv[0] if saved_argv else "segexp", *args]
    code, ours = 0, False
    try:
        with stop_signals(), raising_composition_errors() as ours:
            task()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        if not ours or not (is_usage_error(exc) or isinstance(exc, OSError) and exc.filename):
            raise
        if isinstance(exc, OSError) and not is_usage_error(exc):
            # before the task: Hydra making its output folder (or reading a config file)
            line = (
                f"{exc.filename}: {exc.strerror}; Hydra's output folder must be writable and its "
                "config files readable: choose a writable hydra.run.dir=PATH (hydra.sweep.dir="
                "PATH with -m), or fix the file's permissions"
            )
        else:
            line = usage_error_line(exc, CONFIG_NAME, *command_overrides(args))
        code = _refuse(line.removeprefix("segexp: error: "), EXIT_USER_ERROR)
    finally:
        sys.argv = saved_argv
        if os.environ.get(SWEEP_ENV):  # a sweep is still open: it stopped before its end
            from segexp.jobs.callbacks import end_unfinished_sweep  # measured: 6 s of imports

            end_unfinished_sweep(code or 1)
    return code


if __name__ == "__main__":
    sys.exit(main())
