"""DBSCAN's memory: segexp's estimate (limits.max_neighbour_memory_mb) against the real peak.

    python benchmarks/dbscan_memory.py                 # 20k, 40k, 80k customers, eps 0.3
    python benchmarks/dbscan_memory.py 10000 30000 --eps 0.2

Each size runs in a fresh process: clustered two-column customers (five seeded
blobs on an income x spending plane, like the Mall table), standardized as
``scaler=standard`` does; then ``segexp.jobs.job.neighbour_memory_mb`` (the
estimate the job makes before fitting, with its time) and scikit-learn's
``DBSCAN(eps, min_samples=5).fit``. The peak is the growth of the process's peak
resident set (``resource.getrusage``) over the fit.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CENTRES = [(55, 50), (88, 17), (86, 82), (26, 79), (26, 20)]  # income (k$), spending score
SHARES = [0.4, 0.18, 0.2, 0.11, 0.11]


def clustered(n: int, seed: int = 0):
    """``n`` customers x (annual income, spending score): five seeded blobs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    which = rng.choice(len(CENTRES), size=n, p=SHARES)
    centres = np.asarray(CENTRES, dtype=float)[which]
    return np.clip(centres + rng.normal(0, 7, size=(n, 2)), 1, 140).round(1)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def measure(n: int, eps: float) -> dict:
    import numpy as np
    from sklearn.cluster import DBSCAN

    from segexp.jobs.job import neighbour_memory_mb

    X = clustered(n)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    started = time.perf_counter()
    estimate, mean = neighbour_memory_mb(X, eps, seed=42)
    estimate_s = time.perf_counter() - started
    before = _peak_mb()
    started = time.perf_counter()
    labels = DBSCAN(eps=eps, min_samples=5).fit_predict(X)
    fit_s = time.perf_counter() - started
    return {
        "n": n,
        "eps": eps,
        "mean_neighbours": round(mean, 1),
        "estimate_mb": round(estimate),
        "estimate_s": round(estimate_s, 3),
        "peak_growth_mb": round(_peak_mb() - before),
        "fit_s": round(fit_s, 2),
        "clusters": int(len(set(labels.tolist()) - {-1})),
        "noise": float(np.mean(labels == -1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[20000, 40000, 80000])
    parser.add_argument("--eps", type=float, default=0.3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.sizes[0], args.eps)))
        return
    print(
        "| customers | mean neighbours | estimate MB | estimate s | real peak growth MB "
        "| estimate / real | fit s |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, str(n), "--eps", str(args.eps), "--child"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        ratio = r["estimate_mb"] / max(r["peak_growth_mb"], 1)
        print(
            f"| {r['n']:,} | {r['mean_neighbours']:,.0f} | {r['estimate_mb']:,} | "
            f"{r['estimate_s']} | {r['peak_growth_mb']:,} | {ratio:.2f} | {r['fit_s']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
