"""segexp: experiment-tracked comparison of customer segmentations.

``segexp.run(frame, algo="gmm", k=4)`` fits one run, ``segexp.sweep(frame, k=range(3, 9))``
returns a sweep's leaderboard (docs/notebook.md); both are imported on first use, so
``import segexp`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segexp.contract import VERSION as __version__

__all__ = ["run", "sweep", "__version__"]

if TYPE_CHECKING:
    from segexp.notebook import run, sweep


def __getattr__(name: str) -> Any:
    """``segexp.run`` and ``segexp.sweep`` themselves (their own signature and docstring)."""
    if name in ("run", "sweep"):
        from segexp import notebook  # measured start-up cost: scikit-learn, MLflow, Hydra

        return getattr(notebook, name)
    raise AttributeError(f"module 'segexp' has no attribute {name!r}")
