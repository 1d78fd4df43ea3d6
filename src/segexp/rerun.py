"""``python -m segexp.rerun``: the ``segexp-rerun`` command (code: segexp.tools.rerun)."""

from segexp.tools.shell import rerun_main

if __name__ == "__main__":
    raise SystemExit(rerun_main())
