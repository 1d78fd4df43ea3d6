"""Preprocessing + clusterer as one scikit-learn Pipeline on the raw customer columns, so new
customers are assigned with the training data's medians, bounds and categories."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import KNNImputer, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder
from sklearn.utils.validation import check_is_fitted, validate_data

from segexp.contract import IMPUTE_CHOICES, NOISE_LABEL
from segexp.data import load_customers
from segexp.data.features import resolve_features
from segexp.data.messages import closest
from segexp.data.read import as_text
from segexp.errors import ConfigError, DataError

OUTLIER_CHOICES = ("none", "clip", "winsorize")
# A 0/1 column is flagged when every segment is at least this pure in it ...
DOMINANCE_PURITY = 0.95
# ... unless one of its values already covers this share of customers (purity is then trivial).
DOMINANCE_MAX_BASELINE = 0.9
# what a categories-taking clusterer fell back to (k-prototypes without categories or numbers)
MODE_WARNINGS = {
    "kmeans": "no categorical feature among features.columns: k-prototypes without "
    "categories is k-means, so k-means ran on the numeric columns; list a categorical "
    "column (e.g. features.columns=[gender,age,annual_income]) to cluster mixed data",
    "kmodes": "no numeric feature among features.columns: k-prototypes without numbers is "
    "k-modes, so k-modes ran on the categorical columns",
}


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
    warnings: list[str] = field(default_factory=list)  # one line each; logged and printed
    notes: dict[str, float] = field(default_factory=dict)  # counts to log as metrics
    categorical_positions: tuple[int, ...] = ()  # columns the clusterer took as category codes


@dataclass(frozen=True)
class PreprocessOptions:
    """The ``preprocess`` config group, checked."""

    impute: str = "none"
    outliers: str = "none"
    iqr_factor: float = 1.5
    winsor_limits: tuple[float, float] = (0.05, 0.95)
    log1p: tuple[str, ...] = ()
    log1p_all: bool = False  # preprocess.log1p=true: every numeric feature column
    knn_neighbors: int = 5

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any] | None) -> PreprocessOptions:
        """Options from ``cfg.preprocess``; a bad value is a ConfigError naming its key."""
        values = {**asdict(cls()), **plain_config(cfg)}
        impute, outliers = str(values["impute"]), str(values["outliers"])
        factor, limits = values["iqr_factor"], values["winsor_limits"]
        neighbors, logs = values["knn_neighbors"], values["log1p"] or []
        allowed = "allowed values are "
        rules = {
            "impute": (impute in IMPUTE_CHOICES, allowed + ", ".join(IMPUTE_CHOICES)),
            "outliers": (outliers in OUTLIER_CHOICES, allowed + ", ".join(OUTLIER_CHOICES)),
            "iqr_factor": (_is_number(factor) and factor >= 0, "a number >= 0 (1.5 is usual)"),
            "winsor_limits": (
                isinstance(limits, list | tuple)
                and len(limits) == 2
                and all(map(_is_number, limits))
                and 0 <= limits[0] < limits[1] <= 1,
                "two quantiles [low, high] with 0 <= low < high <= 1 (e.g. [0.05, 0.95])",
            ),
            "knn_neighbors": (type(neighbors) is int and neighbors >= 1, "an integer >= 1"),
        }
        for key, (ok, rule) in rules.items():
            if not ok:
                raise ConfigError(f"preprocess.{key}: {rule}; got {values.get(key)!r}")
        named = () if logs is True else tuple(map(str, [logs] if isinstance(logs, str) else logs))
        bounds = (float(limits[0]), float(limits[1]))
        return cls(impute, outliers, float(factor), bounds, named, logs is True, neighbors)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def plain_config(cfg: DictConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """A config node as a plain dict, interpolations resolved."""
    given = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    return dict(cast("Mapping[str, Any]", given or {}))


class Log1pColumns(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """log(1 + x) of the masked columns: tames skewed, non-negative columns (spend, counts)."""

    def __init__(self, mask: tuple[bool, ...] = ()):
        self.mask = mask

    def fit(self, X, y=None):
        validate_data(self, X, ensure_all_finite="allow-nan", dtype=float)
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        X = validate_data(
            self, X, reset=False, ensure_all_finite="allow-nan", dtype=float, copy=True
        )
        mask = np.asarray(self.mask, dtype=bool)
        X[:, mask] = np.log1p(X[:, mask])
        return X


class OutlierClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip each column to training bounds (``clip``: Tukey's fences, ``winsorize``: the
    ``limits`` quantiles), so new customers are clipped the same way."""

    def __init__(self, method: str = "clip", iqr_factor: float = 1.5, limits: tuple = (0.05, 0.95)):
        self.method = method
        self.iqr_factor = iqr_factor
        self.limits = limits

    def fit(self, X, y=None):
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=float)
        if self.method == "clip":
            q1, q3 = np.nanpercentile(X, [25, 75], axis=0)
            spread = self.iqr_factor * (q3 - q1)
            self.lower_, self.upper_ = q1 - spread, q3 + spread
        else:
            self.lower_, self.upper_ = np.nanquantile(X, list(self.limits), axis=0)
        self.n_clipped_ = int((np.less(X, self.lower_) | np.greater(X, self.upper_)).sum())
        return self

    def transform(self, X):
        check_is_fitted(self, "lower_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=float)
        return np.clip(X, self.lower_, self.upper_)


class ScaledKNNImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """KNN imputation with neighbours found on standardized columns (in raw units, income
    in dollars would decide every neighbourhood); the value is the neighbours' raw mean."""

    def __init__(self, n_neighbors: int = 5):
        self.n_neighbors = n_neighbors

    def fit(self, X, y=None):
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=float)
        self.mean_, scale = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.imputer_ = KNNImputer(n_neighbors=self.n_neighbors, keep_empty_features=True)
        self.imputer_.fit((X - self.mean_) / self.scale_)
        return self

    def transform(self, X):
        check_is_fitted(self, "imputer_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=float)
        return self.imputer_.transform((X - self.mean_) / self.scale_) * self.scale_ + self.mean_


def algorithm_params(algo_cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Resolved hyperparameters of an algo config, without Hydra's ``_target_`` keys."""
    params = plain_config(algo_cfg)
    return {k: v for k, v in params.items() if not (k.startswith("_") and k.endswith("_"))}


def algorithm_uses(algo_cfg: DictConfig, key: str) -> bool:
    """Whether the algo config refers to the top-level ``key`` (e.g. ``${k}``)."""
    raw = OmegaConf.to_container(algo_cfg, resolve=False)
    assert isinstance(raw, dict)  # a DictConfig's container is a dict
    return any(isinstance(v, str) and "${" + key + "}" in v for v in raw.values())


def split_feature_kinds(
    columns: Sequence[str], categorical: Sequence[str], frame: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """Numeric and categorical feature columns (declared categorical or non-numeric dtype)."""
    numeric = pd.api.types.is_numeric_dtype
    cats = [c for c in columns if c in set(categorical) or not numeric(frame[c].dtype)]
    return [c for c in columns if c not in cats], cats


def _numeric_steps(numeric: Sequence[str], options: PreprocessOptions):
    steps: list[tuple[str, Any]] = []
    mask = tuple(options.log1p_all or c in options.log1p for c in numeric)
    if any(mask):
        steps.append(("log1p", Log1pColumns(mask)))
    if options.outliers != "none":
        clipper = OutlierClipper(options.outliers, options.iqr_factor, options.winsor_limits)
        steps.append(("outliers", clipper))
    if options.impute == "knn":
        steps.append(("impute", ScaledKNNImputer(options.knn_neighbors)))
    elif options.impute not in ("none", "drop"):
        steps.append(("impute", SimpleImputer(strategy=options.impute, keep_empty_features=True)))
    return Pipeline(steps) if steps else "passthrough"


def categories_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Category cells as text (missing: NaN): 1 in training and '1' in a new file are one."""
    frame = pd.DataFrame(frame)
    out = pd.DataFrame({c: as_text(frame[c]).astype(object) for c in frame.columns})
    return out.where(out.notna(), np.nan)


def takes_categories(clusterer: Any) -> bool:
    """Whether the clusterer wants category codes, not one-hot columns (k-prototypes)."""
    return bool(getattr(clusterer, "takes_categories", False))


def build_scaler(scaler_cfg: Any) -> Any:
    """The configured scaler, lists as tuples (``MinMaxScaler(feature_range=(0, 10))``)."""
    scaler = instantiate(scaler_cfg, _convert_="all")
    params = scaler.get_params(deep=False) if hasattr(scaler, "get_params") else {}
    lists = {k: tuple(v) for k, v in params.items() if isinstance(v, list)}
    return scaler.set_params(**lists) if lists else scaler


def build_prepare_step(
    numeric: Sequence[str],
    categorical: Sequence[str],
    options: PreprocessOptions,
    *,
    as_codes: bool = False,
) -> ColumnTransformer:
    """Column selection, log1p, outliers, imputation and one-hot encoding (``as_codes``: one
    integer code per categorical column; a category training never saw is -1)."""
    transformers = []
    if numeric:
        transformers.append(("num", _numeric_steps(numeric, options), list(numeric)))
    if categorical:
        encoder: Any = (
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
            if as_codes
            else OneHotEncoder(drop="if_binary", handle_unknown="ignore", sparse_output=False)
        )
        as_text = FunctionTransformer(categories_as_text, feature_names_out="one-to-one")
        imputes = options.impute not in ("none", "drop")
        impute = [("impute", SimpleImputer(strategy="most_frequent"))] if imputes else []
        steps = [("text", as_text), *impute, ("encode", encoder)]
        transformers.append(("cat", Pipeline(steps), list(categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def check_preprocess_config(
    preprocess_cfg: DictConfig | Mapping[str, Any] | None,
    frame: pd.DataFrame,
    columns: Sequence[str],
) -> PreprocessOptions:
    """Everything about ``preprocess`` that can fail, checked before a run is created."""
    options = PreprocessOptions.from_config(preprocess_cfg)
    available = [str(c) for c in frame.columns]
    numeric = pd.api.types.is_numeric_dtype
    # true: the numeric feature columns (categorical ones are not logged)
    logged = [c for c in columns if numeric(frame[c])] if options.log1p_all else options.log1p
    for column in logged:
        if column not in frame.columns:
            raise ConfigError(
                f"preprocess.log1p: '{column}' is not a column of the data"
                f"{closest(column, available)}; columns: {', '.join(available)}"
            )
        values = frame[column]
        if column in columns and not numeric(values):
            raise ConfigError(
                f"preprocess.log1p: '{column}' is not numeric; list numeric columns only"
            )
        if column in columns and (values < 0).any():
            remedy = f"remove '{column}' from preprocess.log1p"
            if options.log1p_all:
                remedy = "list the columns to log instead of true (preprocess.log1p=[...])"
            raise DataError(
                f"preprocess.log1p: column '{column}' has {int((values < 0).sum())} negative "
                f"values (min {values.min()}); log(1 + x) needs values >= 0: {remedy}"
            )
    return options


def dominance_warnings(
    prepare: ColumnTransformer,
    encoded: np.ndarray,
    transformed: np.ndarray,
    labels: np.ndarray,
    n_numeric: int,
) -> list[str]:
    """Warn when a one-hot column carries at least an equal share of the variance, or every
    segment is almost pure in it (a standardized gender dummy splits the Mall by gender)."""
    variances = transformed.var(axis=0)
    total, equal = float(variances.sum()), 1.0 / transformed.shape[1]
    if total <= 0 or transformed.shape[1] < 2 or "cat" not in prepare.named_transformers_:
        return []
    features = next(columns for name, _, columns in prepare.transformers_ if name == "cat")
    encoder = prepare.named_transformers_["cat"][-1]
    dropped = encoder.drop_idx_ if encoder.drop_idx_ is not None else [None] * len(features)
    counts = [len(c) - (d is not None) for c, d in zip(encoder.categories_, dropped, strict=True)]
    names = prepare.get_feature_names_out()[n_numeric:]
    clustered = labels != NOISE_LABEL
    several = len(np.unique(labels[clustered])) >= 2
    warnings = []
    for offset, feature in enumerate(np.repeat(np.asarray(features, dtype=str), counts)):
        values = encoded[:, n_numeric + offset]
        share_one, share = float(values.mean()), float(variances[n_numeric + offset]) / total
        purity_text, pure = "", False
        if several:  # the share of customers in their segment's majority value
            majority = pd.crosstab(labels[clustered], values[clustered]).max(axis=1)
            purity = float(majority.sum() / clustered.sum())
            purity_text = f" and the segments are {purity:.0%} pure in it"
            baseline = max(share_one, 1 - share_one)
            pure = purity >= DOMINANCE_PURITY and baseline < DOMINANCE_MAX_BASELINE
        if share_one in (0.0, 1.0) or (share < equal - 1e-9 and not pure):
            continue
        warnings.append(
            f"encoded binary column '{names[offset]}' (from '{feature}') dominates distances "
            f"after scaling: it carries {share:.0%} of the variance the clusterer sees (equal "
            f"share {equal:.0%}){purity_text}, so segments may split customers by '{feature}' "
            f"alone; drop '{feature}' from features.columns or compare with a run without it"
        )
    return warnings


def fit_segmentation(
    frame: pd.DataFrame,
    columns: Sequence[str],
    categorical: Sequence[str],
    preprocess_cfg: DictConfig | Mapping[str, Any],
    scaler_cfg: DictConfig,
    algo_cfg: DictConfig,
) -> FittedSegmentation:
    """Fit preprocessing and clusterer on the feature columns; return labels and spaces."""
    options = check_preprocess_config(preprocess_cfg, frame, columns)
    features = frame[list(columns)]
    kept, dropped = np.arange(len(frame)), 0
    present = features.notna().all(axis=1).to_numpy()
    if options.impute == "drop":
        kept, dropped = kept[present], int((~present).sum())
        features = features.iloc[kept]
    elif options.impute == "none" and not present.all():
        raise DataError(
            f"{int((~present).sum())} customers have missing feature values; set "
            "preprocess.impute to drop, median, mean, most_frequent or knn"
        )
    numeric, cats = split_feature_kinds(columns, categorical, features)
    clusterer = instantiate(algo_cfg, _convert_="all")
    as_codes = takes_categories(clusterer) and bool(cats)
    prepare = build_prepare_step(numeric, cats, options, as_codes=as_codes)
    scaler = build_scaler(scaler_cfg)
    positions: tuple[int, ...] = ()
    if as_codes:  # the scaler sees the numeric columns only; the codes pass through
        positions = tuple(range(len(numeric), len(numeric) + len(cats)))
        scaler = ColumnTransformer(
            [("num", scaler, list(range(len(numeric))))], remainder="passthrough"
        )
        clusterer.set_params(categorical=positions)
    started = time.perf_counter()
    encoded = np.asarray(prepare.fit_transform(features), dtype=float)
    transformed = np.asarray(scaler.fit_transform(encoded), dtype=float)
    labels = np.asarray(clusterer.fit_predict(transformed)).astype(int)
    seconds = time.perf_counter() - started
    notes: dict[str, float] = {}
    if options.outliers != "none" and numeric:
        clipper = prepare.named_transformers_["num"].named_steps["outliers"]
        notes["outlier_cells_clipped"] = float(clipper.n_clipped_)
    if takes_categories(clusterer):
        fallback = MODE_WARNINGS.get(str(getattr(clusterer, "mode_", "")))
        warnings = [fallback] if fallback else []
    else:
        warnings = dominance_warnings(prepare, encoded, transformed, labels, len(numeric))
    pipeline = Pipeline([("prepare", prepare), ("scale", scaler), ("cluster", clusterer)])
    return FittedSegmentation(
        pipeline, features, transformed, labels, seconds, kept, dropped, warnings, notes, positions
    )


def fit_configured(frame: pd.DataFrame, cfg: DictConfig, table=None) -> FittedSegmentation:
    """Fit the segmentation a composed job config describes (``table``: the loaded table)."""
    table = table if table is not None else load_customers(cfg.data)
    listed = cfg.features.columns
    wanted = list(listed) if OmegaConf.is_list(listed) else str(listed)
    _, columns = resolve_features(wanted, "custom", table)
    return fit_segmentation(frame, columns, table.categorical, cfg.preprocess, cfg.scaler, cfg.algo)
