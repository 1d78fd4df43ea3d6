"""``python -m segexp.rerun``: the ``segexp-rerun`` command (code: segexp.tools.rerun)."""

import sys

if __name__ == "__main__":
    from segexp.tools.rerun import main

    sys.exit(main())
