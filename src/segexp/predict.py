"""``python -m segexp.predict``: the ``segexp-predict`` command (code: segexp.tools.predict)."""

import sys

if __name__ == "__main__":
    from segexp.tools.shell import predict_main

    sys.exit(predict_main())
