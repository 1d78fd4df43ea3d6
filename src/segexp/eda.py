"""``python -m segexp.eda``: the ``segexp-eda`` command (code: segexp.tools.eda)."""

import sys

if __name__ == "__main__":
    from segexp.tools.shell import eda_main

    sys.exit(eda_main())
