"""Preprocessing + clusterer as one scikit-learn Pipeline, fitted on a customer table.

The pipeline takes the raw customer columns (extra columns are ignored) so the
same object later assigns new customers: imputation, encoding and scaling are
steps of it, never done beforehand. ``prepare`` selects and encodes the feature
columns, ``scale`` is the configured scaler, ``cluster`` the configured
algorithm built by ``hydra.utils.instantiate``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.compose import ColumnTransformer
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from segexp.errors import ConfigError

IMPUTE_CHOICES = ("none", "drop", "median", "mean", "most_frequent", "knn")
NOISE_LABEL = -1


@dataclass
class FittedSegmentation:
    """What one fit produced: the pipeline, its feature space and the labels."""

    pipeline: Pipeline
    features: pd.DataFrame  # the raw feature columns of the rows that were fitted
    transformed: np.ndarray  # the rows in the space the clusterer saw
    labels: np.ndarray
    fit_seconds: float
    kept_rows: np.ndarray  # positions in the table of the fitted rows
    dropped_rows: int
    warnings: list[str] = field(default_factory=list)  # logged as a tag and printed


def algorithm_params(algo_cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Resolved hyperparameters of an algo config, without Hydra's ``_target_`` keys."""
    container = (
        OmegaConf.to_container(algo_cfg, resolve=True)
        if isinstance(algo_cfg, DictConfig)
        else dict(algo_cfg)
    )
    return {k: v for k, v in container.items() if not (k.startswith("_") and k.endswith("_"))}


def algorithm_uses(algo_cfg: DictConfig, key: str) -> bool:
    """Whether the algo config refers to the top-level ``key`` (e.g. ``${k}``)."""
    raw = OmegaConf.to_container(algo_cfg, resolve=False)
    return any(isinstance(v, str) and "${" + key + "}" in v for v in raw.values())


def split_feature_kinds(
    columns: Sequence[str], categorical: Sequence[str], frame: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature columns (declared categorical or non-numeric dtype)."""
    cats = [
        c
        for c in columns
        if c in set(categorical) or not pd.api.types.is_numeric_dtype(frame[c].dtype)
    ]
    return [c for c in columns if c not in cats], cats


def _numeric_imputer(impute: str):
    if impute in ("none", "drop"):
        return "passthrough"
    if impute == "knn":
        return KNNImputer(n_neighbors=5)
    return SimpleImputer(strategy=impute)


def build_prepare_step(numeric: Sequence[str], categorical: Sequence[str], impute: str):
    """Column selection, imputation and one-hot encoding of the feature columns."""
    if impute not in IMPUTE_CHOICES:
        raise ConfigError(
            f"preprocess.impute: allowed values are {', '.join(IMPUTE_CHOICES)}; got '{impute}'"
        )
    transformers = []
    if numeric:
        transformers.append(("num", _numeric_imputer(impute), list(numeric)))
    if categorical:
        encoder = OneHotEncoder(drop="if_binary", handle_unknown="ignore", sparse_output=False)
        steps = [("encode", encoder)]
        if impute not in ("none", "drop"):
            steps.insert(0, ("impute", SimpleImputer(strategy="most_frequent")))
        transformers.append(("cat", Pipeline(steps), list(categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def fit_segmentation(
    frame: pd.DataFrame,
    columns: Sequence[str],
    categorical: Sequence[str],
    preprocess_cfg: DictConfig | Mapping[str, Any],
    scaler_cfg: DictConfig,
    algo_cfg: DictConfig,
) -> FittedSegmentation:
    """Fit preprocessing and clusterer on the feature columns; return labels and spaces."""
    impute = str(preprocess_cfg.get("impute", "none"))
    features = frame[list(columns)]
    kept = np.arange(len(frame))
    dropped = 0
    if impute == "drop":
        present = features.notna().all(axis=1).to_numpy()
        kept, dropped = kept[present], int((~present).sum())
        features = features.iloc[kept]
    numeric, cats = split_feature_kinds(columns, categorical, features)
    prepare = build_prepare_step(numeric, cats, impute)
    scaler = instantiate(scaler_cfg)
    clusterer = instantiate(algo_cfg, _convert_="all")
    started = time.perf_counter()
    prepared = Pipeline([("prepare", prepare), ("scale", scaler)])
    transformed = np.asarray(prepared.fit_transform(features), dtype=float)
    labels = np.asarray(clusterer.fit_predict(transformed))
    fit_seconds = time.perf_counter() - started
    pipeline = Pipeline([*prepared.steps, ("cluster", clusterer)])
    return FittedSegmentation(
        pipeline=pipeline,
        features=features,
        transformed=transformed,
        labels=labels.astype(int),
        fit_seconds=fit_seconds,
        kept_rows=kept,
        dropped_rows=dropped,
    )
