"""``python -m segexp.promote``: the ``segexp-promote`` command (code: segexp.tools.promote)."""

import sys

if __name__ == "__main__":
    from segexp.tools.promote import main

    sys.exit(main())
