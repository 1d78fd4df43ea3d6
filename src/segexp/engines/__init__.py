"""Where a job's segmentation is computed: ``engine=sklearn`` (default) or ``engine=spark``.

``engine=sklearn`` is segexp's own path (``segexp.jobs.job``: pandas reads the
table, scikit-learn fits it in the segexp process). ``engine=spark`` hands the
reading, fitting and scoring to a Spark session (``segexp.engines.spark``) and
logs the same run contract; its modules:

    spark_session   pyspark and Java present, one SparkSession per process
    spark_data      the table read by Spark, its columns named as segexp names them
    spark_fit       assemble, scale, fit with pyspark.ml; the model as scikit-learn steps
    spark_scores    silhouette, inertia and the other scores from Spark aggregations
    spark_profile   segment profiles from Spark aggregations
    spark           the job: validate, fit, score, stage the run's files

Nothing here imports pyspark at import time: ``engine=sklearn`` never loads it.
The job layer reaches an engine through ``engine_for`` and the ``Engine`` protocol
only; engines import the layers below (tracking, model, insight, data), never jobs.
"""

from __future__ import annotations

from typing import Any, Protocol

from omegaconf import DictConfig

from segexp.engines.catalog import (  # noqa: F401  (the engine names, re-exported)
    ENGINE_KEYS,
    ENGINES,
    SKLEARN,
    SPARK,
    SPARK_ALGO_NAMES,
    SPARK_ALGORITHMS,
    SPARK_SCALER_NAMES,
    SPARK_SCALERS,
    engine_name,
    uses_spark,
)
from segexp.model.spec import JobSpec
from segexp.tracking.publish import PublishRequest


class Engine(Protocol):
    """What computes a job's run other than segexp's own scikit-learn path."""

    def validate_inputs(
        self, cfg: DictConfig, choices: dict[str, str] | None, *, show: bool = True
    ) -> tuple[JobSpec, Any]:
        """The job's spec and its table as the engine reads it; SegexpError when unusable."""
        ...

    def build_request(
        self,
        cfg: DictConfig,
        spec: JobSpec,
        job: Any,
        tags: dict[str, str],
        tracking_uri: str,
        experiment_id: str = "",
        parent_run_id: str | None = None,
    ) -> PublishRequest:
        """Fit, score and stage the run; a failure becomes a FAILED run, not a raise."""
        ...


def engine_for(cfg: Any) -> Engine | None:
    """The engine ``engine.name`` names; None for engine=sklearn (``segexp.jobs.job``)."""
    if not uses_spark(cfg):
        return None
    from segexp.engines import spark  # pyspark: loaded only for engine=spark

    return spark  # the module implements Engine
