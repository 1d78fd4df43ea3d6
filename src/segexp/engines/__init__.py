"""Where a job's segmentation is computed: engine=sklearn in ``segexp.jobs.job`` itself, or
engine=spark by ``segexp.engines.spark``, which imports pyspark and is loaded only then."""

from __future__ import annotations

from types import ModuleType

from omegaconf import DictConfig, OmegaConf

from segexp.engines.catalog import SPARK
from segexp.engines.spark_session import check_available


def engine_for(cfg: DictConfig) -> ModuleType | None:
    """The engine module (its ``validate_inputs`` and ``build_request`` take the place of the
    job's own) that ``engine.name`` names; None for engine=sklearn (or no engine group)."""
    if OmegaConf.select(cfg, "engine.name", default=None) != SPARK:
        return None
    check_available()  # one line, exit 2, when pyspark or Java is missing
    from segexp.engines import spark  # optional dependency: imports pyspark, engine=spark only

    return spark
