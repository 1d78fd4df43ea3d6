"""Spark's fitted models (``engine=spark``) as scikit-learn steps built from their numbers, so
promote and predict use a Spark run's pipeline without Spark; each predicts as Spark does."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

# Spark's MLUtils.EPSILON: the machine epsilon of a double (2.220446049250313e-16)
SPARK_EPSILON = float(np.finfo(float).eps)


class _Fitted(BaseEstimator):
    """A model fitted by another library: ``fit`` is refused."""

    def fit(self, X, y=None):
        raise NotImplementedError(
            f"{type(self).__name__} holds a model Spark fitted; fit it with engine=spark"
        )

    def _set(self, **fitted: Any) -> Any:
        """The model with its fitted attributes."""
        self.__dict__.update(fitted)
        return self

    def _rows(self, X) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.asarray(validate_data(self, X, reset=False, dtype=float), dtype=float)


class SparkStandardScaler(TransformerMixin, _Fitted):
    """Spark's StandardScalerModel: (x - mean) * (1 / std); 0 where std is 0."""

    def __init__(self, with_mean: bool = True, with_std: bool = True):
        self.with_mean = with_mean
        self.with_std = with_std

    @classmethod
    def from_numbers(
        cls, mean: ArrayLike, std: ArrayLike, with_mean: bool = True
    ) -> SparkStandardScaler:
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        factor = np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
        scaler = cls(with_mean=with_mean, with_std=True)
        return scaler._set(mean_=mean, std_=std, factor_=factor, n_features_in_=len(mean))

    def transform(self, X):
        X = self._rows(X)
        shifted = X - self.mean_ if self.with_mean else X
        return shifted * self.factor_ if self.with_std else shifted

    def get_feature_names_out(self, input_features=None):
        return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)


class NearestCentres(ClusterMixin, _Fitted):
    """KMeansModel.predict: the index of the nearest centre (a tie goes to the first)."""

    def __init__(self, n_clusters: int = 2):
        self.n_clusters = n_clusters

    @classmethod
    def from_centres(cls, centres: np.ndarray) -> NearestCentres:
        centres = np.asarray(centres, dtype=float)
        model = cls(n_clusters=len(centres))
        return model._set(cluster_centers_=centres, n_features_in_=centres.shape[1])

    def predict(self, X):
        X = self._rows(X)
        distances = ((X[:, None, :] - self.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
        return np.argmin(distances, axis=1).astype(int)


class BisectingTree(ClusterMixin, _Fitted):
    """BisectingKMeansModel.predict: from the root, go to the nearer child until a leaf (not
    always the nearest leaf). ``children[i]``: node i's two children (-1, -1: a leaf);
    ``leaf_ids[i]``: a leaf's segment (-1: an inner node)."""

    def __init__(self, n_clusters: int = 2):
        self.n_clusters = n_clusters

    @classmethod
    def from_nodes(
        cls, node_centres: np.ndarray, children: np.ndarray, leaf_ids: np.ndarray, root: int
    ) -> BisectingTree:
        centres, leaves = np.asarray(node_centres, dtype=float), np.asarray(leaf_ids, dtype=int)
        return cls(n_clusters=int((leaves >= 0).sum()))._set(
            node_centres_=centres,
            children_=np.asarray(children, dtype=int).reshape(-1, 2),
            leaf_ids_=leaves,
            root_=int(root),
            n_features_in_=centres.shape[1],
        )

    def predict(self, X):
        X = self._rows(X)
        node = np.full(len(X), self.root_, dtype=int)
        for _ in range(len(self.leaf_ids_)):  # a tree's depth is below its node count
            rows = np.flatnonzero(self.children_[node, 0] >= 0)
            if not len(rows):
                break
            pair = self.children_[node[rows]]
            left = ((X[rows] - self.node_centres_[pair[:, 0]]) ** 2).sum(axis=1)
            right = ((X[rows] - self.node_centres_[pair[:, 1]]) ** 2).sum(axis=1)
            node[rows] = np.where(right < left, pair[:, 1], pair[:, 0])
        return self.leaf_ids_[node].astype(int)


class GaussianComponents(ClusterMixin, _Fitted):
    """GaussianMixtureModel.predict: argmax of EPSILON + weight * pdf(x), with Spark's
    pseudo-determinant and pseudo-inverse of each covariance (eigenvalues above its tolerance)."""

    def __init__(self, n_components: int = 2):
        self.n_components = n_components

    @classmethod
    def from_components(
        cls, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
    ) -> GaussianComponents:
        means, covariances = np.asarray(means, dtype=float), np.asarray(covariances, dtype=float)
        d = means.shape[1]
        roots, constants = [], []  # per component: rows = kept eigen-directions
        for sigma in covariances:
            values, vectors = np.linalg.eigh(sigma)
            kept = values > SPARK_EPSILON * max(values.max(), 0.0) * d
            roots.append((vectors[:, kept] / np.sqrt(values[kept])).T)
            constants.append(-0.5 * (d * np.log(2 * np.pi) + float(np.log(values[kept]).sum())))
        return cls(n_components=len(means))._set(
            weights_=np.asarray(weights, dtype=float),
            means_=means,
            covariances_=covariances,
            root_inverses_=roots,
            log_constants_=np.asarray(constants),
            n_features_in_=d,
        )

    def predict_proba(self, X):
        X = self._rows(X)
        scores = np.empty((len(X), len(self.means_)))
        for i, (mean, root) in enumerate(zip(self.means_, self.root_inverses_, strict=True)):
            pdf = np.exp(self.log_constants_[i] - 0.5 * (((X - mean) @ root.T) ** 2).sum(axis=1))
            scores[:, i] = SPARK_EPSILON + self.weights_[i] * pdf
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X):
        return np.argmax(self.predict_proba(X), axis=1).astype(int)
