"""Two joblib workers against one on a 100k-customer ``k=3..8`` sweep (issue: threads per fit).

Times, alternating, process start to exit:

    segexp -m data.path=<100k csv> k=3..8 hydra/launcher=joblib hydra.launcher.n_jobs=1
    segexp -m data.path=<100k csv> k=3..8 hydra/launcher=joblib hydra.launcher.n_jobs=2
    segexp -m data.path=<100k csv> k=3..8                       (segexp's own launcher)

and prints each median, the 1-worker / 2-worker ratio and the thread count every job
ran with (its ``segexp.fit_threads`` tag). ``--extra`` adds overrides to every
command (e.g. ``limits.threads=2`` to see the libraries' own thread counts). Each
timed sweep gets a copy of one store made by a warm-up run, so the store's one-off
creation is not timed.

    python benchmarks/launcher_speedup.py [--rows 100000] [--rounds 2] [--extra ...]
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

VARIANTS = {
    "joblib n_jobs=1": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=1"],
    "joblib n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "segexp launcher": [],
}


def run(folder: Path, overrides: list[str]) -> float:
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "segexp", "-m", *overrides]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return elapsed


def fit_threads(folder: Path) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    threads = sorted(
        r.data.tags.get("segexp.fit_threads", "?")
        for r in runs
        if r.data.tags.get("segexp.kind") == "job"
    )
    return ",".join(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--extra", nargs="*", default=[])
    args = parser.parse_args()
    from segexp.data.samples import generate_mall_sample

    work = Path(tempfile.mkdtemp(prefix="segexp-bench-launcher-"))
    try:
        data = work / "customers.csv"
        generate_mall_sample(n_customers=args.rows, seed=7).to_csv(data, index=False)
        sweep = [f"data.path={data}", "k=3..8", *args.extra]
        template = work / "template"
        template.mkdir()
        run(template, [f"data.path={data}", "k=3", "plots.enabled=false"])  # creates the store
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        threads: dict[str, str] = {}
        for round_ in range(args.rounds):
            for name, overrides in VARIANTS.items():
                folder = work / f"{round_}-{name.replace(' ', '_')}"
                folder.mkdir()
                shutil.copy(template / "mlflow.db", folder / "mlflow.db")
                times[name].append(run(folder, sweep + overrides))
                threads[name] = fit_threads(folder)
                print(f"round {round_ + 1} {name}: {times[name][-1]:.1f} s", flush=True)
        print(f"\n{args.rows} customers, k=3..8, {os.cpu_count()} cores, {args.rounds} rounds")
        print(f"{'launcher':<18} {'median s':>9}  job threads (segexp.fit_threads)")
        for name, values in times.items():
            print(f"{name:<18} {statistics.median(values):>9.1f}  {threads[name]}")
        one, two = (statistics.median(times[n]) for n in ("joblib n_jobs=1", "joblib n_jobs=2"))
        print(f"2 workers vs 1: {one / two:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
