"""What a publishing worker needs loaded: importing this module loads it.

The command's pool (:mod:`segexp.jobs.publish`) starts its workers from a
forkserver that imports this module once, so every worker it forks starts with
matplotlib, MLflow's SQL store and segexp's figures and summary already loaded
(shared copy-on-write), instead of each loading them again (1.5-2 s of CPU
each). The collector is kept off these imports and what they built is frozen
(see ``quiet_imports``).
"""

from segexp.jobs.gc_pause import quiet_imports

with quiet_imports():
    import matplotlib

    matplotlib.use("Agg")
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import mlflow.tracking  # noqa: F401

    import segexp.insight.plots  # noqa: F401
    import segexp.insight.profiles  # noqa: F401
    import segexp.jobs.summary  # noqa: F401
