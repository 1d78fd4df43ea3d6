"""The mission sweep against the plain @hydra.main script a user would write by hand.

Runs, alternating, `python -m segexp -m algo=kmeans,gmm k=3..8` on the Kaggle
Mall Customers file and ../shared/bench/naive_hydra_sweep.py with the same
sweep (log_model=false), each process start to exit, and prints both medians
and their ratio. Every segexp run is promotable later (skops pipeline +
metadata); the naive runs are not (log_model=false). Each tool has its own
store, created by one warm-up run first, so the timed rounds measure the
steady state of a store in use (the one-off cost of creating a store is
printed separately).

    python benchmarks/sweep_vs_naive.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
MALL = SHARED / "data" / "Mall_Customers.csv"
NAIVE = SHARED / "bench" / "naive_hydra_sweep.py"


def timed(command: list[str], cwd: Path) -> float:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for needed in (MALL, NAIVE):
        if not needed.exists():
            sys.exit(f"{needed} not found (../shared beside the project)")
    work = Path(tempfile.mkdtemp(prefix="segexp-bench-"))
    segexp_dir, naive_dir = work / "segexp", work / "naive"
    segexp_dir.mkdir()
    naive_dir.mkdir()
    segexp_cmd = [
        sys.executable,
        "-m",
        "segexp",
        "-m",
        "algo=kmeans,gmm",
        "k=3..8",
        f"data.path={MALL}",
    ]
    naive_cmd = [
        sys.executable,
        str(NAIVE),
        "-m",
        "algo=kmeans,gmm",
        "k=range(3,9)",
        f"data={MALL}",
        "tracking_uri=sqlite:///naive.db",
        "log_model=false",
    ]
    commands = {"naive": (naive_cmd, naive_dir), "segexp": (segexp_cmd, segexp_dir)}
    first = {name: timed(cmd, cwd) for name, (cmd, cwd) in commands.items()}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, (cmd, cwd) in commands.items():
            times[name].append(timed(cmd, cwd))
    shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"12-run sweep on Mall_Customers.csv, process start to exit, {args.rounds} rounds "
        f"alternating, {os.cpu_count()} cores"
    )
    for name in times:
        rounds = ", ".join(f"{v:.2f}" for v in times[name])
        print(
            f"  {name:10s} median {med[name]:6.2f} s  (rounds: {rounds}; first run with a "
            f"new store: {first[name]:.2f} s)"
        )
    print(f"  ratio segexp / naive: {med['segexp'] / med['naive']:.2f}")


if __name__ == "__main__":
    main()
