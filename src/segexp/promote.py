"""``python -m segexp.promote``: the ``segexp-promote`` command (code: segexp.tools.promote)."""

import sys

if __name__ == "__main__":
    from segexp.tools.shell import promote_main

    sys.exit(promote_main())
