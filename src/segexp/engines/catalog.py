"""The engines' names, and what engine=spark fits for scikit-learn's classes."""

from __future__ import annotations

SPARK = "spark"
# the engines (conf/engine/<name>.yaml); their keys: segexp.jobs.validation's *EngineConf
ENGINE_NAMES = ("sklearn", SPARK)
# the algo config's _target_ -> the pyspark.ml class fitted in its place
SPARK_ALGORITHMS = {
    "sklearn.cluster.KMeans": "pyspark.ml.clustering.KMeans",
    "sklearn.cluster.BisectingKMeans": "pyspark.ml.clustering.BisectingKMeans",
    "sklearn.mixture.GaussianMixture": "pyspark.ml.clustering.GaussianMixture",
}
SPARK_ALGO_NAMES = ("kmeans", "bisecting_kmeans", "gmm")
# the scaler config's _target_ -> what Spark does (StandardScaler, or nothing)
SPARK_SCALERS = {
    "sklearn.preprocessing.StandardScaler": "standard",
    "sklearn.preprocessing.FunctionTransformer": "none",
}
SPARK_SCALER_NAMES = ("standard", "none")
