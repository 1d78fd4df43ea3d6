"""The engines segexp knows and what ``engine=spark`` can fit: names, classes, config keys."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

SKLEARN = "sklearn"
SPARK = "spark"
ENGINES = (SKLEARN, SPARK)

# engine=spark: scikit-learn's class of the algo config (_target_) -> the pyspark.ml class
# fitted in its place, and the packaged algo options that name them
SPARK_ALGORITHMS = {
    "sklearn.cluster.KMeans": "pyspark.ml.clustering.KMeans",
    "sklearn.cluster.BisectingKMeans": "pyspark.ml.clustering.BisectingKMeans",
    "sklearn.mixture.GaussianMixture": "pyspark.ml.clustering.GaussianMixture",
}
SPARK_ALGO_NAMES = ("kmeans", "bisecting_kmeans", "gmm")
# scikit-learn's class of the scaler config -> what Spark does (StandardScaler, or nothing)
SPARK_SCALERS = {
    "sklearn.preprocessing.StandardScaler": "standard",
    "sklearn.preprocessing.FunctionTransformer": "none",
}
SPARK_SCALER_NAMES = ("standard", "none")
# the keys of each engine's config (conf/engine/<name>.yaml)
ENGINE_KEYS = {
    SKLEARN: ("name",),
    SPARK: ("name", "master", "driver_memory", "sample_rows", "shuffle_partitions"),
}


def engine_name(cfg: Any) -> str:
    """The job's ``engine.name``; sklearn for a config without the group (older runs)."""
    name = OmegaConf.select(cfg, "engine.name", default=SKLEARN) if cfg is not None else None
    return str(name) if name is not None else SKLEARN


def uses_spark(cfg: Any) -> bool:
    return engine_name(cfg) == SPARK
