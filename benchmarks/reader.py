"""segexp's table loading against plain pandas, for time and peak memory.

A Mall-shaped customer table (zero-padded text id, gender, age, income, score:
5 columns) is written at 10k, 100k and 1M rows as CSV and as Parquet. Each case
runs in a fresh Python process, after its imports and one read of a 10-row file
of the same format (lazy imports and first-call set-up), three times:

* ``pandas``: ``pandas.read_csv`` / ``pandas.read_parquet`` with no options;
* ``segexp``: ``segexp.data.load_customers`` on the file, i.e. reading, schema
  inference, every check (ids unique, numbers finite, non-negative ...) and the
  data fingerprint: what a run does before fitting.

Prints the median wall time and peak memory (the growth of the process's peak RSS
over its RSS before the read, Linux /proc), and the segexp/pandas ratios.

    python benchmarks/reader.py [--rows 10000 100000 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

CASE = r"""
import json, sys, time
import pandas as pd
from omegaconf import OmegaConf
from segexp.data import load_customers

tool, path, conf, warm = sys.argv[1:5]


def rss_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024


def load(file):
    if tool == "segexp":
        return load_customers(OmegaConf.merge(OmegaConf.load(conf), {"path": file}))
    return pd.read_parquet(file) if file.endswith(".parquet") else pd.read_csv(file)


load(warm)  # lazy imports and first-call set-up, paid once per process by both
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset the peak RSS (VmHWM) to the current RSS
before = rss_mb("VmRSS")
start = time.perf_counter()
result = load(path)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mb": rss_mb("VmHWM") - before}))
"""


def write_table(folder: Path, rows: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "CustomerID": [f"{i:07d}" for i in range(1, rows + 1)],
            "Genre": rng.choice(["Male", "Female"], rows),
            "Age": rng.integers(18, 70, rows),
            "Annual Income (k$)": rng.integers(15, 140, rows),
            "Spending Score (1-100)": rng.integers(1, 100, rows),
        }
    )
    csv_path, parquet_path = folder / f"customers_{rows}.csv", folder / f"customers_{rows}.parquet"
    frame.to_csv(csv_path, index=False)
    frame.to_parquet(parquet_path, index=False)
    return csv_path, parquet_path


def measure(tool: str, path: Path, conf: Path, warm: Path, repeats: int) -> tuple[float, float]:
    """(median seconds, median peak MB) of ``repeats`` fresh processes."""
    seconds, peaks = [], []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", CASE, tool, str(path), str(conf), str(warm)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        seconds.append(result["seconds"])
        peaks.append(result["peak_mb"])
    return statistics.median(seconds), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import segexp.data

    conf = Path(segexp.data.__file__).resolve().parents[1] / "conf" / "data" / "mall_sample.yaml"
    print(
        f"{'rows':>9} {'format':<8} {'pandas s':>9} {'segexp s':>9} {'ratio':>6} "
        f"{'pandas MB':>10} {'segexp MB':>10} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        warm = dict(zip(("csv", "parquet"), write_table(Path(tmp), 10), strict=True))
        for rows in args.rows:
            for path in write_table(Path(tmp), rows):
                fmt = path.suffix.lstrip(".")
                plain_s, plain_mb = measure("pandas", path, conf, warm[fmt], args.repeats)
                ours_s, ours_mb = measure("segexp", path, conf, warm[fmt], args.repeats)
                print(
                    f"{rows:>9} {fmt:<8} {plain_s:>9.3f} {ours_s:>9.3f} {ours_s / plain_s:>6.1f} "
                    f"{plain_mb:>10.1f} {ours_mb:>10.1f} {ours_mb / max(plain_mb, 0.1):>6.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
