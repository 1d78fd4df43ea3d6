"""Keep Python's cyclic garbage collector off the heavy imports of a short-lived process.

Importing mlflow's SQL store, scikit-learn or matplotlib creates millions of
long-lived objects, and every full collection triggered while they load walks
all of them again: measured at 0.4-0.6 s of CPU per process for the mission
sweep, the same order as the imports' own work. ``quiet_imports`` pauses the
collector for the block and then freezes everything that survived (gc.freeze),
so later collections only look at objects created by the jobs themselves.
Import-time garbage is small; the collector runs as usual afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_imports() -> Iterator[None]:
    """Run the block with the collector paused, then move what it built out of its way."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
