"""``python -m segexp.eda``: the ``segexp-eda`` command (code: segexp.tools.eda)."""

from segexp.tools.shell import eda_main

if __name__ == "__main__":
    raise SystemExit(eda_main())
