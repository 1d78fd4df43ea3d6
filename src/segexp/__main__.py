"""``python -m segexp`` and the ``segexp`` command: one run, or a sweep with ``-m``.

This module stays light (the app is imported inside ``main``): the processes of
the publishing pool import the command's main module when they start.
"""

import sys


def main() -> int:
    from segexp.jobs import publish
    from segexp.jobs.gc_pause import quiet_imports

    if not any(flag in sys.argv[1:] for flag in publish.NO_RUN_FLAGS):
        publish.start_pool()  # its workers load MLflow while this process loads the app
    with quiet_imports():
        from segexp.jobs.app import main as run_app

    return run_app()


if __name__ == "__main__":
    sys.exit(main())
