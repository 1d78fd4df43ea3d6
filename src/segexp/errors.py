"""Errors users read.

Every error a user can cause by input or configuration is a ``SegexpError``;
the command-line tools print its one-line message and exit with code 2, never a
traceback. Anything else is a bug or an algorithm failure and is reported as
such.

    SegexpError              exit code 2, one line: what, where, allowed, received
     +-- ConfigError         a config key or command-line value is wrong
     |    +-- RangeSyntaxError   a malformed ``key=A..B`` range
     +-- DataError           the input data cannot be used as it is
     +-- TrackingError       the MLflow store/run a command needs is not there
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class SegexpError(Exception):
    """A mistake in the user's input or configuration; its message is one line."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(SegexpError):
    """A config key or command-line value is not allowed."""


class RangeSyntaxError(ConfigError):
    """A ``key=A..B[:STEP]`` range on the command line is malformed."""


class DataError(SegexpError):
    """The data file or table cannot be used as it is."""


class TrackingError(SegexpError):
    """The MLflow store, run or model the command refers to does not exist."""
