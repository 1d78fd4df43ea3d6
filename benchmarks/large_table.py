"""One k-means run on a generated N-customer x 3-feature Parquet table, per engine.

    python benchmarks/large_table.py 1000000 10000000            # both engines
    python benchmarks/large_table.py 10000000 --engines sklearn   # the default engine only

For each N it writes the table (an id and three numeric columns drawn from five
seeded blobs) to a temporary folder, then times, process start to exit,

    segexp data.path=<table> k=5                                   (engine=sklearn, the default)
    segexp data.path=<table> k=5 engine=spark engine.master='local[2]'

each into a copy of one store that a 200-customer warm-up run created (so the store's
one-off creation is not timed), with every metric, the plots and the logging on. It
prints the wall time, the peak resident memory of the command's process tree (the
command and Spark's JVM; sampled every 0.2 s), the run's
fit_seconds and silhouette, and which assignments file the run holds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["annual_income", "spending_score", "age"]
ENGINES = {
    "sklearn": [],
    "spark": ["engine=spark", "engine.master='local[2]'", "engine.shuffle_partitions=2"],
}


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process under it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    total, todo, page = 0, [pid], os.sysconf("SC_PAGE_SIZE")
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
    frame = pd.DataFrame(values.round(1), columns=FEATURES)
    frame.insert(0, "customer_id", np.arange(1, n + 1))
    frame.to_parquet(path, index=False)


def timed_run(command: list[str], folder: Path, timeout: float) -> tuple[float, int, int, str]:
    """(wall s, peak tree RSS bytes, exit code, stderr tail) of one command."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    peak = [0]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def watch() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], tree_rss(process.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return time.perf_counter() - started, peak[0], -9, "timed out"
    wall = time.perf_counter() - started
    watcher.join()
    return wall, peak[0], process.returncode, err.decode(errors="replace")[-2000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="+")
    parser.add_argument("--engines", default="sklearn,spark")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    from mlflow.tracking import MlflowClient

    work = Path(tempfile.mkdtemp(prefix="segexp-bench-large-"))
    rows_out = []
    try:
        template = work / "template"
        template.mkdir()
        base = [sys.executable, "-m", "segexp", "k=5", f"features.columns=[{','.join(FEATURES)}]"]
        warm = timed_run([sys.executable, "-m", "segexp", "plots.enabled=false"], template, 300)
        if warm[2] != 0:
            print(warm[3], file=sys.stderr)
            return 1
        for n in args.rows:
            data = work / f"customers-{n}.parquet"
            generate(data, n)
            for engine in engines:
                folder = work / f"{engine}-{n}"
                folder.mkdir()
                shutil.copy(template / "mlflow.db", folder / "mlflow.db")
                command = [*base, f"data.path={data}", *ENGINES[engine]]
                wall, peak, code, err = timed_run(command, folder, args.timeout)
                metrics: dict[str, float] = {}
                files: set[str] = set()
                if code == 0:
                    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
                    ids = [e.experiment_id for e in client.search_experiments()]
                    run = client.search_runs(ids, order_by=["attributes.start_time DESC"])[0]
                    metrics = run.data.metrics
                    files = {a.path for a in client.list_artifacts(run.info.run_id)}
                else:
                    print(f"{engine} at {n}: exit {code}: {err}", file=sys.stderr)
                assignments = next((f for f in sorted(files) if f.startswith("assignments")), "-")
                rows_out.append(
                    f"| {n:,} | {engine} | {wall:.1f} s{'' if code == 0 else f' (exit {code})'} "
                    f"| {peak / 2**30:.2f} GB | {metrics.get('fit_seconds', float('nan')):.1f} s "
                    f"| {metrics.get('silhouette', float('nan')):.4f} | {assignments} |"
                )
                print(rows_out[-1], flush=True)
            data.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{os.cpu_count()} cores; k-means k=5, 3 features, plots and every metric on")
    print("| customers | engine | wall | peak RSS (tree) | fit_seconds | silhouette | assignments")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows_out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
