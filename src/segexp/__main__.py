"""``python -m segexp``: one segmentation run, or a sweep with ``-m``.

Range shorthand (``k=3..8``) is expanded before Hydra reads the command line;
everything else is Hydra: config groups, overrides, ``-m``, launchers.
Exit codes: 0 all jobs finished (or were skipped as duplicates), 1 a job
failed, 2 bad input or configuration.
"""

from __future__ import annotations

import os
import sys

from segexp import writer
from segexp.errors import SegexpError
from segexp.gc_tuning import quiet_imports
from segexp.ranges import expand_argv


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        args = expand_argv(args)
    except SegexpError as exc:
        print(f"segexp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    # Start the MLflow writer before the heavy imports below, so both load side by side.
    writer.start_if_wanted(args)
    try:
        with quiet_imports():
            from segexp import app

        return app.run(args)
    except writer.WriterGone as exc:
        print(f"segexp: error: {exc}", file=sys.stderr)
        return 1
    finally:
        writer.stop()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if writer.started_here:
        # Jobs ran in this process and every run is ended; tearing the interpreter down
        # would only cost time. Other launchers (joblib's workers) keep the normal exit.
        os._exit(code)
    sys.exit(code)
