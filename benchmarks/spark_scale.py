"""One engine=spark k-means run on local[2] over a generated N x 3 Parquet file.

    python benchmarks/spark_scale.py 1000000        # N rows (default 100000; at most 1M here)

Writes the table (three numeric columns and an id, five seeded blobs) to a temporary
folder, runs ``python -m segexp engine=spark engine.master='local[2]' algo=kmeans k=5``
on it into a temporary SQLite store, and prints the wall time of the command and the
peak resident memory of its process tree (the Python process and Spark's JVM together),
sampled every 0.2 s (psutil when installed, else /proc), and the run's fit_seconds.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every descendant."""
    try:
        import psutil

        root = psutil.Process(pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        return total
    except ImportError:
        pass
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * page
        todo.extend(children.get(current, []))
    return total


def generate(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = np.array([[20, 20, 30], [80, 80, 40], [20, 80, 60], [80, 20, 25], [50, 50, 50]])
    which = rng.integers(0, len(centres), n)
    values = np.clip(centres[which] + rng.normal(0, 6, (n, 3)), 0, None)  # non-negative
    frame = pd.DataFrame(values, columns=["annual_income", "spending_score", "age"])
    frame.insert(0, "customer_id", [f"C{i:08d}" for i in range(n)])
    frame.to_parquet(path, index=False)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    if n > 1_000_000:
        print("at most 1000000 rows on these machines", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="segexp-spark-bench-") as folder:
        data = Path(folder) / "customers.parquet"
        started = time.perf_counter()
        generate(data, n)
        generated = time.perf_counter() - started
        store = f"sqlite:///{folder}/mlflow.db"
        command = [
            sys.executable,
            "-m",
            "segexp",
            "engine=spark",
            "engine.master='local[2]'",
            "engine.shuffle_partitions=2",
            "algo=kmeans",
            "k=5",
            "features.columns=[annual_income,spending_score,age]",
            f"data.path={data}",
            f"mlflow.tracking_uri={store}",
        ]
        peak = [0]
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

        def watch() -> None:
            while process.poll() is None:
                peak[0] = max(peak[0], _tree_rss(process.pid))
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        out, err = process.communicate()
        wall = time.perf_counter() - started
        watcher.join()
        if process.returncode != 0:
            print(err.decode()[-3000:], file=sys.stderr)
            return process.returncode
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=store)
        (run,) = client.search_runs(
            [client.get_experiment_by_name("segexp-customers").experiment_id]
        )
        metrics = run.data.metrics
    print("| rows | generate | command wall | fit_seconds | peak RSS (tree) | silhouette |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {n:,} | {generated:.1f} s | {wall:.1f} s | {metrics['fit_seconds']:.1f} s | "
        f"{peak[0] / 2**20:,.0f} MB | {metrics['silhouette']:.4f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
