"""k-prototypes (Huang 1997, ``kmodes``) for numeric + categorical features (docs/data.md).

The pipeline gives it the scaled numeric columns, then one integer code per categorical
column (``takes_categories``), so categories are compared as categories, never as 0/1
columns whose weight depends on the scaler. All numeric: k-means; all categorical: k-modes.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from kmodes.kmodes import KModes
from kmodes.kprototypes import KPrototypes
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

MODE_KPROTOTYPES = "kprototypes"
MODE_KMEANS = "kmeans"
MODE_KMODES = "kmodes"
_AT_LEAST_ONE = Interval(Integral, 1, None, closed="left")


class KPrototypesClusterer(ClusterMixin, BaseEstimator):
    """k-prototypes on a prepared frame whose ``categorical`` columns hold category codes.

    Parameters are ``KPrototypes``' own (``gamma``: the weight of one mismatch against
    squared numeric distance; None: kmodes' default), plus ``categorical``, the codes'
    positions in X, which segexp's pipeline sets.
    """

    # The pipeline's rule: clusterers with this flag get category codes, not one-hot.
    takes_categories = True
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "n_clusters": [_AT_LEAST_ONE],
        "init": [StrOptions({"Huang", "Cao", "random"})],
        "n_init": [_AT_LEAST_ONE],
        "max_iter": [_AT_LEAST_ONE],
        "gamma": [Interval(Real, 0, None, closed="left"), None],
        "random_state": ["random_state"],
        "categorical": ["array-like", None],
    }

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

    def fit(self, X, y=None):
        self._validate_params()  # scikit-learn's checks and words: segexp names the config key
        positions = sorted(int(p) for p in self.categorical or ())
        if len(set(positions)) != len(positions) or any(p < 0 for p in positions):
            raise InvalidParameterError(
                f"The 'categorical' parameter of {type(self).__name__} must be distinct column "
                f"positions >= 0. Got {self.categorical!r} instead."
            )
        X = validate_data(self, X, dtype=float)
        if positions and max(positions) >= X.shape[1]:
            raise ValueError(
                f"categorical column position {max(positions)} is outside X's {X.shape[1]} columns"
            )
        self.categorical_ = positions
        common: dict[str, Any] = {"n_clusters": self.n_clusters, "n_init": self.n_init}
        common.update(max_iter=self.max_iter, random_state=self.random_state)
        model: Any
        self.gamma_: float | None = None
        if not positions:
            model = KMeans(**common).fit(X)
            self.mode_, self.cost_ = MODE_KMEANS, float(model.inertia_)
            self.cluster_centroids_ = np.asarray(model.cluster_centers_, dtype=float)
        elif len(positions) == X.shape[1]:
            model = KModes(init=self.init, **common).fit(X)
            self.mode_, self.cost_ = MODE_KMODES, float(model.cost_)
            self.cluster_centroids_ = np.asarray(model.cluster_centroids_, dtype=float)
        else:
            model = KPrototypes(init=self.init, gamma=self.gamma, **common)
            model.fit(X, categorical=positions)
            self.mode_, self.cost_, self.gamma_ = (
                MODE_KPROTOTYPES,
                float(model.cost_),
                float(model.gamma),
            )
            # kmodes puts the numeric centroids first; back in X's column order
            numeric = [i for i in range(X.shape[1]) if i not in set(positions)]
            centroids = np.asarray(model.cluster_centroids_, dtype=float)
            self.cluster_centroids_ = centroids[:, np.argsort(numeric + positions)]
        self.model_ = model
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        return self

    def predict(self, X):
        """The segment of each row: the nearest centre by the algorithm's own cost."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=float)
        if self.mode_ == MODE_KPROTOTYPES:
            return np.asarray(self.model_.predict(X, categorical=self.categorical_), dtype=np.int64)
        return np.asarray(self.model_.predict(X), dtype=np.int64)
