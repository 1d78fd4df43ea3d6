"""``python -m segexp.predict``: the ``segexp-predict`` command (code: segexp.tools.predict)."""

from segexp.tools.shell import predict_main

if __name__ == "__main__":
    raise SystemExit(predict_main())
