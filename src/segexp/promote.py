"""``python -m segexp.promote``: the ``segexp-promote`` command (code: segexp.tools.promote)."""

from segexp.tools.shell import promote_main

if __name__ == "__main__":
    raise SystemExit(promote_main())
