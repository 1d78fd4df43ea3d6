"""segexp: experiment-tracked comparison of customer segmentations.

The command line (``segexp``, ``segexp-compare``, ...) and this small Python
API share one path to MLflow:

    import segexp
    result = segexp.run(data="customers.csv", overrides=["algo=gmm", "k=4"])
    board = segexp.sweep(data=frame, overrides=["algo=kmeans,gmm", "k=3..8"])

Heavy imports (scikit-learn, MLflow, Hydra) happen on the first call, not on
``import segexp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segexp.contract import VERSION as __version__

__all__ = ["run", "sweep", "__version__"]

if TYPE_CHECKING:
    from segexp.jobs.api import RunResult


def run(data: Any = None, overrides: list[str] | None = None, **kwargs: Any) -> RunResult:
    """Fit and log one job; see :func:`segexp.jobs.api.run`."""
    from segexp.jobs import api

    return api.run(data=data, overrides=overrides, **kwargs)


def sweep(data: Any = None, overrides: list[str] | None = None, **kwargs: Any):
    """Run a multirun and return its leaderboard; see :func:`segexp.jobs.api.sweep`."""
    from segexp.jobs import api

    return api.sweep(data=data, overrides=overrides, **kwargs)
