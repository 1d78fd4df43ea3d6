"""k-prototypes (Huang 1997, ``kmodes``) on scaled numbers plus category codes, so categories
are compared as categories, not as 0/1 columns weighted by the scaler (docs/data.md)."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from kmodes.kmodes import KModes
from kmodes.kprototypes import KPrototypes
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted, validate_data

MODE_KPROTOTYPES = "kprototypes"
MODE_KMEANS = "kmeans"
MODE_KMODES = "kmodes"
_COUNT = "an int in the range [1, inf)"
_INITS = ("Huang", "Cao", "random")


class InvalidParameterError(ValueError, TypeError):
    """scikit-learn's kind of parameter error (its class is private): segexp names the key."""


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and int(value) >= low


class KPrototypesClusterer(ClusterMixin, BaseEstimator):
    """``KPrototypes``' parameters plus ``categorical``, the codes' positions in X (the pipeline
    sets it); no categorical column: k-means, only categorical columns: k-modes."""

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

    def fit(self, X, y=None):
        codes = list(self.categorical or ())
        positions = sorted(int(p) for p in codes if _is_int(p, 0))
        seed = self.random_state
        counts = ("n_clusters", "n_init", "max_iter")
        rules = {  # scikit-learn's words, which segexp.jobs.estimators turns into the key's
            **{name: (_is_int(getattr(self, name), 1), _COUNT) for name in counts},
            "init": (self.init in _INITS, "a str among {'Cao', 'Huang', 'random'}"),
            "gamma": (
                self.gamma is None or isinstance(self.gamma, Real) and self.gamma >= 0,
                "a float in the range [0.0, inf) or None",
            ),
            "random_state": (
                seed is None or isinstance(seed, np.random.RandomState) or _is_int(seed, 0),
                "an int in the range [0, 4294967295], a RandomState instance or None",
            ),
            "categorical": (
                len(positions) == len(set(positions)) == len(codes),
                "distinct column positions >= 0",
            ),
        }
        for name, (ok, allowed) in rules.items():
            if not ok:
                raise InvalidParameterError(
                    f"The '{name}' parameter of {type(self).__name__} must be {allowed}. "
                    f"Got {getattr(self, name)!r} instead."
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
        if not positions:
            model = KMeans(**common).fit(X)
            self.mode_, self.cost_ = MODE_KMEANS, float(model.inertia_)
        elif len(positions) == X.shape[1]:
            model = KModes(init=self.init, **common).fit(X)
            self.mode_, self.cost_ = MODE_KMODES, float(model.cost_)
        else:
            model = KPrototypes(init=self.init, gamma=self.gamma, **common)
            model.fit(X, categorical=positions)
            self.mode_, self.cost_ = MODE_KPROTOTYPES, float(model.cost_)
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
