"""``python -m segexp`` and the ``segexp`` command: one run, or a sweep with ``-m``."""

import sys

from segexp.jobs.app import main

if __name__ == "__main__":
    sys.exit(main())
