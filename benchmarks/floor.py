"""segexp against the floor: the same fits and scores with plain scikit-learn and pandas.

    python benchmarks/floor.py [--rounds 1] [--skip-10m] [--only 1M]

On generated customers (an id and numeric columns drawn from five seeded blobs),
each measured process start to exit, segexp and the floor alternating:

1. the 100k-customer sweep ``segexp -m algo=kmeans,gmm k=3..8`` (12 jobs) against a
   floor script doing, per job, what a segexp job computes by default: read the
   table, standardize, fit (k-means n_init=10 / Gaussian mixture), silhouette on a
   seeded 10,000-row sample, Calinski-Harabasz, Davies-Bouldin, stability (6
   subsamples of 80% of at most 20,000 customers, refitted, mean pairwise ARI) and
   the per-customer assignments written as CSV; no logging, no figures;
2. the same sweep with ``hydra/launcher=joblib hydra.launcher.n_jobs=2`` against one
   worker (``n_jobs=1``);
3. one k-means job (k=5) on 1M customers x 3 columns, against the floor's one job;
4. one k-means job on 10M customers: wall time and the peak resident memory of the
   command's process tree.

Each segexp command logs into a copy of a store one warm-up run created, so the
store's one-off creation is not timed. Prints every time, the medians and the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from large_table import timed_run  # noqa: E402  (the process-tree timer of large_table.py)

FLOOR_JOB = textwrap.dedent(
    """
    import sys, time
    from itertools import combinations
    import numpy as np, pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import (adjusted_rand_score, calinski_harabasz_score,
                                 davies_bouldin_score, silhouette_score)
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    path, out, jobs = sys.argv[1], sys.argv[2], sys.argv[3:]
    def model(algo, k, seed=42):
        if algo == "kmeans":
            return KMeans(n_clusters=k, n_init=10, random_state=seed)
        return GaussianMixture(n_components=k, random_state=seed)
    for job in jobs:
        algo, k = job.split(":"); k = int(k)
        frame = pd.read_parquet(path)
        X = StandardScaler().fit_transform(frame.drop(columns="customer_id"))
        labels = model(algo, k).fit_predict(X)
        rng = np.random.default_rng(42)
        sample = rng.choice(len(X), min(10000, len(X)), replace=False)
        scores = [silhouette_score(X[sample], labels[sample]),
                  calinski_harabasz_score(X, labels), davies_bouldin_score(X, labels)]
        subset = rng.choice(len(X), min(20000, len(X)), replace=False)
        fits = []
        for r in range(6):
            rows = np.sort(rng.choice(subset, int(0.8 * len(subset)), replace=False))
            fits.append((rows, model(algo, k, r).fit(X[rows]).predict(X[subset])))
        stability = np.mean([adjusted_rand_score(a[1], b[1]) for a, b in combinations(fits, 2)])
        pd.DataFrame({"customer_id": frame["customer_id"], "segment": labels}).to_csv(
            f"{out}-{algo}-{k}.csv", index=False)
    """
)


def generate(path: Path, n: int, columns: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(10, 90, (5, columns))
    which = rng.integers(0, len(centres), n)
    values = np.clip(centres[which] + rng.normal(0, 6, (n, columns)), 0, None)
    frame = pd.DataFrame(values.round(1), columns=[f"x{i}" for i in range(columns)])
    frame.insert(0, "customer_id", np.arange(1, n + 1))
    frame.to_parquet(path, index=False)


def run(command: list[str], folder: Path, timeout: float = 1800) -> tuple[float, int]:
    wall, peak, code, err = timed_run(command, folder, timeout)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(command)}\n{err}")
    return wall, peak


def segexp(args: list[str], table: Path, store: Path, folder: Path) -> list[str]:
    db = folder / "mlflow.db"
    shutil.copy(store, db)
    return [sys.executable, "-m", "segexp", *args, f"data.path={table}"] + [
        "features=all_numeric",
        f"mlflow.tracking_uri=sqlite:///{db}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--skip-10m", action="store_true")
    parser.add_argument("--only", default="", help="the cases whose name holds this, e.g. '1M'")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="segexp-floor-"))
    floor_script = work / "floor_job.py"
    floor_script.write_text(FLOOR_JOB)
    tables = {"100k": (100_000, 2), "1M": (1_000_000, 3), "10M": (10_000_000, 3)}
    if options.skip_10m:
        tables.pop("10M")
    paths = {}
    for name, (n, columns) in tables.items():
        paths[name] = work / f"customers-{name}.parquet"
        generate(paths[name], n, columns)
    warm = work / "warm"
    warm.mkdir()
    subprocess.run(
        [sys.executable, "-m", "segexp", "k=3", f"mlflow.tracking_uri=sqlite:///{warm}/mlflow.db"],
        cwd=warm,
        check=True,
        capture_output=True,
    )
    store = warm / "mlflow.db"
    sweep = ["-m", "algo=kmeans,gmm", "k=3..8"]
    jobs = [f"{a}:{k}" for a in ("kmeans", "gmm") for k in range(3, 9)]
    cases = {
        "sweep 100k: floor": lambda f: [
            sys.executable,
            str(floor_script),
            str(paths["100k"]),
            str(f / "a"),
            *jobs,
        ],
        "sweep 100k: segexp": lambda f: segexp(sweep, paths["100k"], store, f),
        "sweep 100k: joblib n_jobs=1": lambda f: segexp(
            [*sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=1"], paths["100k"], store, f
        ),
        "sweep 100k: joblib n_jobs=2": lambda f: segexp(
            [*sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], paths["100k"], store, f
        ),
        "1M job: floor": lambda f: [
            sys.executable,
            str(floor_script),
            str(paths["1M"]),
            str(f / "a"),
            "kmeans:5",
        ],
        "1M job: segexp": lambda f: segexp(["k=5"], paths["1M"], store, f),
    }
    if "10M" in paths:
        cases["10M job: segexp"] = lambda f: segexp(["k=5"], paths["10M"], store, f)
    cases = {name: command for name, command in cases.items() if options.only in name}
    walls: dict[str, list[float]] = {name: [] for name in cases}
    peaks: dict[str, int] = {}
    for _ in range(options.rounds):
        for name, command in cases.items():
            folder = Path(tempfile.mkdtemp(dir=work))
            wall, peak = run(command(folder), folder)
            walls[name].append(wall)
            peaks[name] = max(peaks.get(name, 0), peak)
            shutil.rmtree(folder, ignore_errors=True)
            print(f"  {name:30s} {wall:7.1f} s  peak {peak / 2**30:5.2f} GB", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(values) for name, values in walls.items()}
    print(f"\nmedians of {options.rounds} round(s), {os.cpu_count()} cores:")
    for name, value in med.items():
        print(f"  {name:30s} {value:7.1f} s  peak {peaks[name] / 2**30:5.2f} GB")
    ratios = {
        "sweep 100k, segexp / floor:      ": ("sweep 100k: segexp", "sweep 100k: floor"),
        "sweep 100k, joblib 1 / 2 workers:": (
            "sweep 100k: joblib n_jobs=1",
            "sweep 100k: joblib n_jobs=2",
        ),
        "1M job, segexp / floor:          ": ("1M job: segexp", "1M job: floor"),
    }
    for label, (top, bottom) in ratios.items():
        if top in med and bottom in med:
            print(f"  {label} {med[top] / med[bottom]:.2f}")


if __name__ == "__main__":
    main()
