"""k-prototypes for numeric + categorical customer features, as a scikit-learn clusterer.

``KPrototypesClusterer`` (``algo=kprototypes``) wraps ``kmodes.kprototypes.KPrototypes``
(Huang 1997): a segment's centre is the mean of its numeric columns and the mode of
its categorical ones; a customer's cost to a centre is the squared Euclidean distance
on the numeric columns plus ``gamma`` times the number of categorical mismatches.

It takes the prepared frame as the pipeline builds it for clusterers that declare
``takes_categories = True`` (see ``segexp.model.pipeline``): the scaled numeric
columns first, then one integer code per categorical column (not one-hot), whose
positions the pipeline sets as the ``categorical`` parameter. So categories are
compared as categories, never as 0/1 columns whose weight depends on the scaler.

Without a categorical feature (``features.columns`` all numeric) k-prototypes is
k-means: the clusterer then fits ``sklearn.cluster.KMeans`` with the same ``n_clusters``,
``n_init``, ``max_iter`` and ``random_state`` (``mode_ == "kmeans"``); with only
categorical features it is k-modes (``kmodes.kmodes.KModes``, ``mode_ == "kmodes"``).
Either way ``labels_``, ``cost_`` (the algorithm's own objective: k-prototypes' cost,
k-means' inertia, k-modes' mismatches), ``cluster_centroids_`` and ``predict`` exist.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from kmodes.kmodes import KModes
from kmodes.kprototypes import KPrototypes
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted, validate_data

INIT_CHOICES = ("Huang", "Cao", "random")
MODE_KPROTOTYPES = "kprototypes"
MODE_KMEANS = "kmeans"
MODE_KMODES = "kmodes"


class InvalidParameterError(ValueError, TypeError):
    """A hyperparameter out of its range, worded as scikit-learn words it (segexp's config
    check recognises the class by name and names the config key in its message)."""


def _check_int(owner: str, name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be an int in the range [{low}, inf). "
            f"Got {value!r} instead."
        )


class KPrototypesClusterer(ClusterMixin, BaseEstimator):
    """k-prototypes on a prepared frame whose ``categorical`` columns hold category codes.

    Parameters are ``KPrototypes``' own (``n_clusters``, ``init``, ``n_init``,
    ``max_iter``, ``gamma``: the weight of one categorical mismatch against squared
    numeric distance, None: kmodes' default, half the mean standard deviation of the
    numeric columns; ``random_state``), plus ``categorical``: the positions of the
    categorical columns in X, set by segexp's pipeline.
    """

    # The pipeline's rule: clusterers with this flag get category codes, not one-hot.
    takes_categories = True

    def __init__(
        self,
        n_clusters: int = 8,
        init: str = "Huang",
        n_init: int = 10,
        max_iter: int = 100,
        gamma: float | None = None,
        random_state: int | None = None,
        categorical: tuple[int, ...] = (),
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.gamma = gamma
        self.random_state = random_state
        self.categorical = categorical

    def _check_params(self) -> list[int]:
        owner = type(self).__name__
        _check_int(owner, "n_clusters", self.n_clusters, 1)
        _check_int(owner, "n_init", self.n_init, 1)
        _check_int(owner, "max_iter", self.max_iter, 1)
        if self.init not in INIT_CHOICES:
            raise InvalidParameterError(
                f"The 'init' parameter of {owner} must be a str among "
                f"{{{', '.join(repr(c) for c in INIT_CHOICES)}}}. Got {self.init!r} instead."
            )
        gamma = self.gamma
        if gamma is not None and (
            isinstance(gamma, bool) or not isinstance(gamma, Real) or not gamma >= 0
        ):
            raise InvalidParameterError(
                f"The 'gamma' parameter of {owner} must be a float in the range [0, inf) "
                f"or None. Got {gamma!r} instead."
            )
        positions = [int(p) for p in (self.categorical or ())]
        if len(set(positions)) != len(positions) or any(p < 0 for p in positions):
            raise InvalidParameterError(
                f"The 'categorical' parameter of {owner} must be distinct column positions "
                f">= 0. Got {self.categorical!r} instead."
            )
        return sorted(positions)

    def fit(self, X, y=None):
        positions = self._check_params()
        X = validate_data(self, X, dtype=float)
        if positions and max(positions) >= X.shape[1]:
            raise ValueError(
                f"categorical column position {max(positions)} is outside X's {X.shape[1]} columns"
            )
        self.categorical_ = positions
        if not positions:
            model: Any = KMeans(
                n_clusters=self.n_clusters,
                n_init=self.n_init,
                max_iter=self.max_iter,
                random_state=self.random_state,
            ).fit(X)
            self.mode_, self.cost_, self.gamma_ = MODE_KMEANS, float(model.inertia_), None
            self.cluster_centroids_ = np.asarray(model.cluster_centers_, dtype=float)
        elif len(positions) == X.shape[1]:
            model = KModes(
                n_clusters=self.n_clusters,
                init=self.init,
                n_init=self.n_init,
                max_iter=self.max_iter,
                random_state=self.random_state,
            ).fit(X)
            self.mode_, self.cost_, self.gamma_ = MODE_KMODES, float(model.cost_), None
            self.cluster_centroids_ = np.asarray(model.cluster_centroids_, dtype=float)
        else:
            model = KPrototypes(
                n_clusters=self.n_clusters,
                init=self.init,
                n_init=self.n_init,
                max_iter=self.max_iter,
                gamma=self.gamma,
                random_state=self.random_state,
            ).fit(X, categorical=positions)
            self.mode_, self.cost_ = MODE_KPROTOTYPES, float(model.cost_)
            self.gamma_ = float(model.gamma)
            # kmodes returns numeric and decoded categorical centroids side by side, the
            # numeric first; put them back in X's column order
            centroids = np.asarray(model.cluster_centroids_, dtype=float)
            numeric = [i for i in range(X.shape[1]) if i not in set(positions)]
            self.cluster_centroids_ = centroids[:, np.argsort(numeric + positions)]
        self.model_ = model
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        return self

    def predict(self, X):
        """The segment of each row: the nearest centre by the algorithm's own cost."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=float)
        if self.mode_ == MODE_KPROTOTYPES:
            labels = self.model_.predict(X, categorical=self.categorical_)
        else:
            labels = self.model_.predict(X)
        return np.asarray(labels, dtype=np.int64)
