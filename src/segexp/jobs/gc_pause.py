"""Keep Python's cyclic garbage collector off the heavy imports of a short-lived process."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_imports() -> Iterator[None]:
    """Keep the cyclic garbage collector off a block of heavy imports, then freeze them.

    MLflow, scikit-learn and matplotlib create millions of long-lived objects on
    import, and every full collection while they load walks all of them again
    (0.4-0.6 s of CPU per process here). ``gc.freeze`` moves what the imports built
    out of the collector's way afterwards; later collections see the jobs' objects.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
