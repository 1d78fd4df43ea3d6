"""Where a job's segmentation is computed: engine=sklearn in ``segexp.jobs.job`` itself, or
engine=spark by ``segexp.engines.spark``, which imports pyspark and is loaded only then."""

from __future__ import annotations

from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from segexp.engines.catalog import SPARK
from segexp.engines.spark_session import check_available
from segexp.model.spec import JobSpec
from segexp.tracking.publish import PublishRequest


class Engine(Protocol):
    """What computes a job's run in place of segexp's own scikit-learn path."""

    def validate_inputs(
        self, cfg: DictConfig, choices: dict[str, str] | None, *, show: bool = True
    ) -> tuple[JobSpec, Any]:
        """The job's spec and its table as the engine reads it; SegexpError when unusable."""

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


def engine_for(cfg: DictConfig) -> Engine | None:
    """The engine ``engine.name`` names; None for engine=sklearn (or no engine group)."""
    if OmegaConf.select(cfg, "engine.name", default=None) != SPARK:
        return None
    check_available()  # one line, exit 2, when pyspark or Java is missing
    from segexp.engines import spark  # imports pyspark: loaded only for engine=spark

    return spark  # the module implements Engine
