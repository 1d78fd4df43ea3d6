"""Fitted models as files that load without running code: skops, with segexp's list of types.

A pickle runs whatever its author put in it when loaded, so anyone who can write a
tracking store could run code on the machine of whoever promotes or scores from it.
segexp writes its pipelines (``model/pipeline.skops``) and promoted assigners
(``assigner.skops``) with ``skops.io`` and loads only types it trusts: scikit-learn's
(skops trusts those itself), ``TRUSTED_TYPES`` (checked by ``tests/tools/test_trust.py``)
and the ``_target_`` classes of the user's own ``algo``/``scaler`` configs (their code).
Any other type is refused with a ``TrackingError`` naming it, and nothing is built.
Older segexp's pickles load only with ``SEGEXP_TRUST_PICKLE=1`` (README, "Trust model").

Birch's CF tree cannot be stored: the stored pipeline holds ``FittedBirch``, which
predicts as the fitted Birch did.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
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
    """A fitted Birch's prediction without its CF tree (which skops cannot store).

    ``predict`` is Birch's own: the label of the nearest subcluster centre.
    """

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
    if isinstance(pipeline[-1], Birch):
        steps = list(pipeline.steps)
        steps[-1] = (steps[-1][0], FittedBirch.from_birch(pipeline[-1]))
        return Pipeline(steps)
    return pipeline


def save(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` (a fitted pipeline or an assigner) as a skops file."""
    path = Path(path)
    if isinstance(obj, Pipeline):
        obj = storable(obj)
    elif isinstance(getattr(obj, "pipeline", None), Pipeline):  # a SegmentAssigner
        obj = replace(obj, pipeline=storable(obj.pipeline))
    import skops.io as sio  # here: importing skops walks every scikit-learn module (~0.5 s)

    sio.dump(obj, path)
    return path


USER_TARGET_GROUPS = ("algo", "scaler")


def user_targets(folder: Path | None = None) -> set[str]:
    """Every ``_target_`` named in the ``algo`` and ``scaler`` configs of the user's own
    folder (``$SEGEXP_CONF_DIR`` or ``./conf``): the user's code, so runs of it store them."""
    if folder is None:  # as hydra_plugins.segexp_sweep.user_conf finds it (not shipped in models)
        configured = os.environ.get("SEGEXP_CONF_DIR")
        folder = Path(configured).expanduser() if configured else Path.cwd() / "conf"
    if not folder.is_dir():
        return set()
    import yaml

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_target_" and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    files = [f for group in USER_TARGET_GROUPS for f in sorted((folder / group).glob("*.yaml"))]
    for file in files:
        try:
            walk(yaml.safe_load(file.read_text()))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue  # Hydra reports a broken file of the user's when it is composed
    return found


def trusted_types() -> list[str]:
    """The explicit list ``skops.io.load`` is given: segexp's types + the user's targets."""
    return sorted({*TRUSTED_TYPES, *user_targets()})


def load(path: str | Path, what: str | None = None) -> Any:
    """Load a skops file segexp wrote; TrackingError naming any type outside the list.

    ``what`` names the file for the message, e.g. ``run 1a2b...: model/pipeline.skops``.
    """
    import skops.io as sio

    path = Path(path)
    what = what or str(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
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
    return sio.load(path, trusted=allowed)


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
    import joblib

    return joblib.load(path)
