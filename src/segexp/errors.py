"""Every error segexp reports to its users, in one place.

A ``SegexpError`` is printed by the command-line tools as one line,
``segexp: error: <message>``, and the tool exits with the error's code, never
with a traceback. Anything else is a bug or an algorithm failure and is
reported as such.

    SegexpError                exit 2, one line: what, where, allowed, received
     +-- ConfigError           a config key or command-line value is wrong
     |    +-- RangeSyntaxError     a malformed ``key=A..B`` range
     +-- DataError             the input data cannot be used as it is
     +-- TrackingError         the MLflow store/run/model a command needs is not there
     |    +-- EmptyLeaderboardError  nothing to rank (exit 1: not the user's mistake)
     |    +-- StoreWriteError  the store stopped taking a run's writes (exit 1: the command stops)
     +-- ValidationFailed      promote: the new version does not reproduce its run (exit 3)
     +-- RerunFailed           rerun: the re-run failed or assigned other segments (exit 1)
     +-- DataChanged           rerun: the data's fingerprint differs (exit 3)
     +-- RunFailed             segexp.run / segexp.sweep: the command did not succeed
                               (carries the command's exit code)
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


class EmptyLeaderboardError(TrackingError):
    """Nothing to rank: no runs, or none passes the filters. Exit code 1, not a user error."""

    exit_code = 1


class StoreWriteError(TrackingError):
    """The store refused a run's writes (a full disk, a read-only folder, a server gone):
    the command stops at once rather than report runs the store does not hold. Exit 1."""

    exit_code = 1


class ValidationFailed(SegexpError):
    """The registered version does not reproduce its run's segments; the alias did not move."""

    exit_code = 3


class RerunFailed(SegexpError):
    """The re-run failed or assigned different segments."""

    exit_code = 1


class DataChanged(SegexpError):
    """The data's fingerprint differs from the original run's: segments are not comparable."""

    exit_code = 3


class RunFailed(SegexpError):
    """``segexp.run``/``segexp.sweep``: the command ended with a non-zero exit code; its
    one-line message was printed above and is this error's message."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self):  # picklable with its exit code
        return (type(self), (str(self), self.exit_code))


def first_line(exc: BaseException) -> str:
    """The first line of a library's error, for a one-line message (its type if empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
