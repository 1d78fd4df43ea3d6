"""segexp: experiment-tracked comparison of customer segmentations.

The command line (``segexp``, ``segexp-compare``, ...) and this small Python
API share one path to MLflow:

    import segexp
    result = segexp.run(frame, algo="gmm", k=4)      # one run: a Segmentation
    result.figures["segments"]; result.predict(new_customers)
    board = segexp.sweep(frame, algo=("kmeans", "gmm"), k=range(3, 9))  # its leaderboard

``help(segexp.run)`` and ``help(segexp.sweep)`` describe the settings. Heavy imports
(scikit-learn, MLflow, Hydra) happen when ``run`` or ``sweep`` is first looked up,
not on ``import segexp``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segexp.contract import VERSION as __version__

__all__ = ["run", "sweep", "__version__"]

if TYPE_CHECKING:
    from segexp.notebook import run, sweep


def __getattr__(name: str) -> Any:
    """``segexp.run`` and ``segexp.sweep``: the functions themselves (their own signature and
    docstring), imported on first use."""
    if name in ("run", "sweep"):
        from segexp import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'segexp' has no attribute {name!r}")
