"""``python -m segexp.compare``: the ``segexp-compare`` command (code: segexp.tools.compare)."""

from segexp.tools.shell import compare_main

if __name__ == "__main__":
    raise SystemExit(compare_main())
