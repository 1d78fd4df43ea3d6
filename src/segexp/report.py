"""``python -m segexp.report``: the ``segexp-report`` command (code: segexp.tools.report)."""

import sys

if __name__ == "__main__":
    from segexp.tools.shell import report_main

    sys.exit(report_main())
