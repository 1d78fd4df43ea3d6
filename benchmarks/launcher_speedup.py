"""Two joblib workers against one on a 100k-customer ``k=3..8`` sweep (issue: threads per fit).

Times, alternating, process start to exit:

    segexp -m data.path=<100k csv> k=3..8 hydra/launcher=joblib hydra.launcher.n_jobs=1
    segexp -m data.path=<100k csv> k=3..8 hydra/launcher=joblib hydra.launcher.n_jobs=2
    segexp -m data.path=<100k csv> k=3..8                       (segexp's own launcher)

and prints each median, the 1-worker / 2-worker ratio, the thread count every job
ran with (its ``segexp.fit_threads`` tag) and the CPU seconds of the whole process
tree (the command and joblib's workers) with the cores that keeps
busy on average (CPU seconds / wall seconds). The CPU seconds are the machine's busy
time from ``/proc/stat`` while the command runs (joblib's workers are
children of a forkserver, which no ``getrusage`` of ours counts), so run it on a
quiet machine. A sweep that already keeps c of the
n cores busy with one worker can gain at most n / c from more workers.

``--extra`` adds overrides to every command (e.g. ``limits.threads=2`` to see the
libraries' own thread counts). Each timed sweep gets a copy of one store made by a
warm-up run, so the store's one-off creation is not timed.

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


def _busy_cpu_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (Linux)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run(folder: Path, overrides: list[str]) -> tuple[float, float]:
    """Wall seconds and the machine's busy CPU seconds while the command ran."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "segexp", "-m", *overrides]
    cpu_before = _busy_cpu_seconds()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    cpu = _busy_cpu_seconds() - cpu_before
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return elapsed, cpu


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
        cpus: dict[str, list[float]] = {name: [] for name in VARIANTS}
        threads: dict[str, str] = {}
        for round_ in range(args.rounds):
            for name, overrides in VARIANTS.items():
                folder = work / f"{round_}-{name.replace(' ', '_')}"
                folder.mkdir()
                shutil.copy(template / "mlflow.db", folder / "mlflow.db")
                wall, cpu = run(folder, sweep + overrides)
                times[name].append(wall)
                cpus[name].append(cpu)
                threads[name] = fit_threads(folder)
                print(f"round {round_ + 1} {name}: {wall:.1f} s, {cpu:.1f} CPU s", flush=True)
        print(f"\n{args.rows} customers, k=3..8, {os.cpu_count()} cores, {args.rounds} rounds")
        print(f"{'launcher':<18} {'median s':>9} {'CPU s':>7} {'busy cores':>10}  job threads")
        for name, values in times.items():
            wall, cpu = statistics.median(values), statistics.median(cpus[name])
            print(f"{name:<18} {wall:>9.1f} {cpu:>7.1f} {cpu / wall:>10.2f}  {threads[name]}")
        one, two = (statistics.median(times[n]) for n in ("joblib n_jobs=1", "joblib n_jobs=2"))
        cores = len(os.sched_getaffinity(0))
        busy = statistics.median(cpus["joblib n_jobs=1"]) / one
        print(f"2 workers vs 1: {one / two:.2f}x (at most {cores / busy:.2f}x: one worker")
        print(f"already keeps {busy:.2f} of {cores} cores busy)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
