"""segexp's cost per run over a bare scikit-learn loop doing the same work.

On the built-in sample: (a) a bare loop that fits the same pipelines
(standard scaling + k-means / Gaussian mixture, k = 3..8) and computes the same
scores (silhouette, inertia, Calinski-Harabasz, Davies-Bouldin); (b) segexp's
``run_job`` doing the same runs in this process with all its logging,
artifacts, plots, stability and profiles into a fresh SQLite store (published in
this process, as every segexp job is, so the cost is all on one core).
Prints the median wall time per run of each, the difference, and where segexp's
time goes: the job itself, drawing its figures, and logging it to MLflow.

    python benchmarks/run_overhead.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from segexp.data.samples import generate_mall_sample
from segexp.jobs.job import build_request, run_job, validate_inputs
from segexp.tracking.publish import publish
from segexp.tracking.store import Tracker

JOBS = [(algo, k) for algo in ("kmeans", "gmm") for k in range(3, 9)]


def bare_run(table, algo: str, k: int) -> dict:
    features = table[["annual_income", "spending_score"]]
    clusterer = (
        KMeans(n_clusters=k, n_init=10, random_state=42)
        if algo == "kmeans"
        else GaussianMixture(n_components=k, random_state=42)
    )
    pipe = Pipeline([("scale", StandardScaler()), ("cluster", clusterer)])
    with threadpool_limits(1):  # the same threading segexp uses for small tables
        points = pipe[:-1].fit_transform(features)
        labels = pipe[-1].fit_predict(points)
    inertia = sum(
        ((points[labels == s] - points[labels == s].mean(0)) ** 2).sum() for s in np.unique(labels)
    )
    return {
        "silhouette": silhouette_score(points, labels),
        "inertia": inertia,
        "ch": calinski_harabasz_score(points, labels),
        "db": davies_bouldin_score(points, labels),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    table = generate_mall_sample()
    store = Path(tempfile.mkdtemp(prefix="segexp-overhead-")) / "mlflow.db"
    bare, framework, compute, drawing, logging_ = [], [], [], [], []
    with initialize_config_module("segexp.conf", version_base="1.3"):
        configs = []
        for algo, k in JOBS:
            cfg = compose(
                "config",
                overrides=[f"algo={algo}", f"k={k}", f"mlflow.tracking_uri=sqlite:///{store}"],
                return_hydra_config=True,
            )
            configs.append(cfg)
    HydraConfig.instance().set_config(configs[0])
    run_job(configs[0])  # warm-up: creates the store and experiment, loads imports
    bare_run(table, "kmeans", 3)
    for _ in range(args.repeats):
        for (algo, k), cfg in zip(JOBS, configs, strict=True):
            started = time.perf_counter()
            bare_run(table, algo, k)
            bare.append(time.perf_counter() - started)
            HydraConfig.instance().set_config(cfg)
            started = time.perf_counter()
            outcome = run_job(cfg)
            framework.append(time.perf_counter() - started)
            if outcome.status != "finished":
                sys.exit(f"run failed: {outcome.message}")
            # the same run in its two halves: what the job computes, what logging costs
            started = time.perf_counter()
            spec, customers = validate_inputs(cfg)
            uri = f"sqlite:///{store}"
            experiment_id = Tracker(uri).experiment_id(str(cfg.mlflow.experiment))
            request = build_request(cfg, spec, customers, {}, uri, experiment_id, None)
            compute.append(time.perf_counter() - started)
            started = time.perf_counter()
            request.figures.draw(Path(request.record.artifact_dir))
            drawing.append(time.perf_counter() - started)
            request.figures = None
            started = time.perf_counter()
            publish(request)
            logging_.append(time.perf_counter() - started)
    a, b = statistics.median(bare), statistics.median(framework)
    print(f"built-in sample (200 customers), {len(JOBS)} configurations x {args.repeats}")
    print(f"  (a) bare scikit-learn loop   median {a * 1000:7.1f} ms per run")
    print(f"  (b) segexp run_job           median {b * 1000:7.1f} ms per run")
    print(
        f"      of which the job itself  median {statistics.median(compute) * 1000:7.1f} ms "
        "(fit, scores, reference space, 6-resample stability, profile, staged files)"
    )
    print(
        f"      drawing its figures      median {statistics.median(drawing) * 1000:7.1f} ms "
        "(5 PNGs)"
    )
    print(
        f"      and logging it           median {statistics.median(logging_) * 1000:7.1f} ms "
        "(run start, one log_batch, one artifact upload, run end)"
    )
    print(f"  segexp's cost per run: {(b - a) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
