"""``python -m segexp.rerun``: the ``segexp-rerun`` command (code: segexp.tools.rerun)."""

import sys

if __name__ == "__main__":
    from segexp.tools.shell import rerun_main

    sys.exit(rerun_main())
