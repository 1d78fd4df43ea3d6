"""``segexp-predict`` on a large customer file: wall time of the command a user runs.

Sets up (once, in ``--folder``) a store holding a k-means (k=5) run of the Kaggle
Mall file promoted to champion, writes a Mall-shaped CSV of ``--rows`` rows
(zero-padded text id, gender, age, income, score, e-mail) and times
``python -m segexp.predict input=<file> output=<out.csv> rejects=<rejects.csv>``
as a subprocess (imports, reading, checks, scoring, writing), ``--repeats`` times.
Prints the median and every time, in seconds.

    python benchmarks/predict_rows.py [--rows 1000000] [--repeats 3] [--folder /tmp/predict-bench]

Reuse the same ``--folder`` to compare two versions of the code on the same model and file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

MALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "Mall_Customers.csv"


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SEGEXP_"))}
    return {**clean, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONWARNINGS": "ignore"}


def segexp(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"python -m {module} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def set_up(folder: Path, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    store = f"mlflow.tracking_uri=sqlite:///{folder / 'mlflow.db'}"
    if not (folder / "promoted").exists():
        segexp("segexp", f"data.path={MALL}", "k=5", "plots.enabled=false", store, cwd=folder)
        segexp(
            "segexp.promote",
            "best=silhouette",
            "scope=experiment",
            "report.enabled=false",
            store,
            cwd=folder,
        )
        (folder / "promoted").write_text("yes\n")
    path = folder / f"customers_{rows}.csv"
    if not path.exists():
        rng = np.random.default_rng(0)
        pd.DataFrame(
            {
                "CustomerID": [f"{i:07d}" for i in range(1, rows + 1)],
                "Genre": rng.choice(["Male", "Female"], rows),
                "Age": rng.integers(18, 70, rows),
                "Annual Income (k$)": rng.integers(15, 140, rows),
                "Spending Score (1-100)": rng.integers(1, 100, rows),
                "Email": [f"c{i}@example.com" for i in range(rows)],
            }
        ).to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/segexp-predict-bench"))
    args = parser.parse_args()
    path = set_up(args.folder, args.rows)
    store = f"mlflow.tracking_uri=sqlite:///{args.folder / 'mlflow.db'}"
    times = []
    for i in range(args.repeats):
        for name in ("out.csv", "rejects.csv"):
            (args.folder / name).unlink(missing_ok=True)
        start = time.perf_counter()
        done = segexp(
            "segexp.predict",
            f"input={path}",
            f"output={args.folder / 'out.csv'}",
            f"rejects={args.folder / 'rejects.csv'}",
            store,
            cwd=args.folder,
        )
        times.append(time.perf_counter() - start)
        if i == 0:
            print(done.stdout.strip().splitlines()[-1])
    shown = ", ".join(f"{t:.2f}" for t in times)
    print(f"predict, {args.rows:,} rows: median {statistics.median(times):.2f} s ({shown})")


if __name__ == "__main__":
    main()
