"""``python -m segexp.compare``: the ``segexp-compare`` command (code: segexp.tools.compare)."""

import sys

if __name__ == "__main__":
    from segexp.tools.shell import compare_main

    sys.exit(compare_main())
