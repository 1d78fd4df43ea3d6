"""The Hydra app behind ``segexp``. Light: ``--help`` and usage errors answer before pandas,
scikit-learn or MLflow load."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

CONFIG_NAME = "config"


@hydra.main(version_base="1.3", config_path="pkg://segexp.conf", config_name=CONFIG_NAME)
def task(cfg: DictConfig) -> float:
    """One job, logged; the objective a sweeper reads."""
    # pandas, scikit-learn and MLflow (about 1.5 s) load once Hydra has composed a config
    from segexp.jobs.task import run_task

    return run_task(cfg)
