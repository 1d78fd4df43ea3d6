"""``python -m segexp.report``: the ``segexp-report`` command (code: segexp.tools.report)."""

from segexp.tools.shell import report_main

if __name__ == "__main__":
    raise SystemExit(report_main())
