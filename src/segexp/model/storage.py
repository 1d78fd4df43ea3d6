"""Fitted models as skops files that load only types segexp trusts (docs/trust.md): a pickle
runs whatever its author put in it, so anyone who can write a store could run code here."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import yaml
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import Birch
from sklearn.metrics import pairwise_distances_argmin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from segexp.errors import TrackingError

SKOPS_SUFFIX = ".skops"
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
TRUST_PICKLE_ENV = "SEGEXP_TRUST_PICKLE"

# Types segexp's pipelines and assigners hold that skops does not trust by itself.
TRUSTED_TYPES: tuple[str, ...] = (
    # segexp's own transformers, the categorical step's function and the assigners
    "segexp.model.pipeline.Log1pColumns",
    "segexp.model.pipeline.OutlierClipper",
    "segexp.model.pipeline.ScaledKNNImputer",
    "segexp.model.pipeline.categories_as_text",
    "segexp.model.assign.SegmentAssigner",
    "segexp.model.assign.NearestCoreAssigner",
    "segexp.model.storage.FittedBirch",
    # algo=kprototypes: segexp's adapter and the kmodes estimators and distances it holds
    "segexp.model.mixed.KPrototypesClusterer",
    "kmodes.kprototypes.KPrototypes",
    "kmodes.kmodes.KModes",
    "kmodes.util.dissim.euclidean_dissim",
    "kmodes.util.dissim.matching_dissim",
    # engine=spark: the Spark model's numbers as scikit-learn steps (segexp.model.centroids)
    "segexp.model.centroids.SparkStandardScaler",
    "segexp.model.centroids.NearestCentres",
    "segexp.model.centroids.BisectingTree",
    "segexp.model.centroids.GaussianComponents",
    # numpy/scipy values inside fitted estimators (imputers' dtypes, spectral's affinity)
    "numpy.dtype",
    "scipy.sparse._csr.csr_matrix",
    # BisectingKMeans: its tree of splits (plain data; predict walks it) and its k-means step
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
    # the neighbour searches of the extensions (DBSCAN's nearest core, the k-NN vote)
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
)


class FittedBirch(ClusterMixin, BaseEstimator):
    """A fitted Birch's prediction (the nearest subcluster's label) without its CF tree,
    which skops cannot store."""

    def __init__(self, threshold: float = 0.5, branching_factor: int = 50, n_clusters=3):
        self.threshold = threshold
        self.branching_factor = branching_factor
        self.n_clusters = n_clusters

    @classmethod
    def from_birch(cls, birch: Birch) -> FittedBirch:
        check_is_fitted(birch, "subcluster_centers_")
        fitted = cls(birch.threshold, birch.branching_factor, birch.n_clusters)
        fitted.subcluster_centers_ = np.asarray(birch.subcluster_centers_)
        fitted.subcluster_labels_ = np.asarray(birch.subcluster_labels_)
        fitted.subcluster_norms_ = np.asarray(birch._subcluster_norms)
        fitted.labels_ = np.asarray(birch.labels_)
        fitted.n_features_in_ = birch.n_features_in_
        if hasattr(birch, "feature_names_in_"):
            fitted.feature_names_in_ = birch.feature_names_in_
        return fitted

    def fit(self, X, y=None):
        raise NotImplementedError("FittedBirch stores a fitted Birch; fit a Birch instead")

    def predict(self, X):
        check_is_fitted(self, "subcluster_centers_")
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        argmin = pairwise_distances_argmin(
            X, self.subcluster_centers_, metric_kwargs={"Y_norm_squared": self.subcluster_norms_}
        )
        return self.subcluster_labels_[argmin]


def storable(pipeline: Pipeline) -> Pipeline:
    """The pipeline as skops can store it: a final Birch becomes ``FittedBirch``."""
    name, last = pipeline.steps[-1]
    if isinstance(last, Birch):
        return Pipeline([*pipeline.steps[:-1], (name, FittedBirch.from_birch(last))])
    return pipeline


def _skops() -> Any:
    import skops.io  # here: importing skops walks every scikit-learn module (~0.5 s)

    return skops.io


def save(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` (a fitted pipeline or an assigner) as a skops file."""
    path = Path(path)
    if isinstance(obj, Pipeline):
        obj = storable(obj)
    elif isinstance(getattr(obj, "pipeline", None), Pipeline):  # a SegmentAssigner
        obj = replace(obj, pipeline=storable(obj.pipeline))
    _skops().dump(obj, path)
    return path


def _targets(node: Any) -> set[str]:
    """Every ``_target_`` text in a YAML document."""
    if isinstance(node, dict):
        own = {node["_target_"]} if isinstance(node.get("_target_"), str) else set()
        return own.union(*map(_targets, node.values()))
    return set().union(*map(_targets, node)) if isinstance(node, list) else set()


def user_targets(folder: Path | None = None) -> set[str]:
    """Every ``_target_`` in the ``algo`` and ``scaler`` configs of the user's own folder
    (``$SEGEXP_CONF_DIR`` or ``./conf``): the user's code, so runs of it store them."""
    if folder is None:  # as hydra_plugins.segexp_sweep.user_conf finds it (not shipped in models)
        configured = os.environ.get("SEGEXP_CONF_DIR")
        folder = Path(configured).expanduser() if configured else Path.cwd() / "conf"
    found: set[str] = set()
    for file in sorted([*folder.glob("algo/*.yaml"), *folder.glob("scaler/*.yaml")]):
        try:
            found |= _targets(yaml.safe_load(file.read_text()))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue  # Hydra reports a broken file of the user's when it is composed
    return found


def trusted_types() -> list[str]:
    """The explicit list ``skops.io.load`` is given: segexp's types + the user's targets."""
    return sorted({*TRUSTED_TYPES, *user_targets()})


def load(path: str | Path, what: str | None = None) -> Any:
    """Load a skops file segexp wrote; TrackingError naming any type outside the list
    (``what`` names the file: ``run 1a2b...: model/pipeline.skops``)."""
    sio = _skops()
    what = what or str(path)
    try:
        untrusted = sio.get_untrusted_types(file=Path(path))
    except Exception as exc:  # not a skops file at all (truncated, a zip of something else)
        raise TrackingError(
            f"{what} is not a readable skops file ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); it was not loaded"
        ) from exc
    allowed = trusted_types()
    refused = sorted(set(untrusted) - set(allowed))
    if refused:
        raise TrackingError(
            f"{what} holds types segexp does not trust: {', '.join(refused)}; "
            "it was not loaded (nothing in it ran). segexp writes only scikit-learn, numpy "
            "and its own types; re-create the run with segexp-rerun run_id=<id>, or add the "
            "class to an algo config in your own conf folder if it is yours"
        )
    return sio.load(Path(path), trusted=allowed)


def pickle_trusted() -> bool:
    """``SEGEXP_TRUST_PICKLE=1``: load pickles from the store (they can run any code)."""
    return os.environ.get(TRUST_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def load_pickle(path: str | Path, what: str, remedy: str) -> Any:
    """A pickle from older segexp: refused unless ``SEGEXP_TRUST_PICKLE=1``."""
    if not pickle_trusted():
        raise TrackingError(
            f"{what} is a pickle (older segexp stored models so); loading a pickle runs any "
            f"code its author put in it, so segexp does not load it: {remedy}; or, "
            f"only if you trust everyone who can write this store, set {TRUST_PICKLE_ENV}=1"
        )
    return joblib.load(path)
