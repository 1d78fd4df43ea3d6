"""How long each segexp tool takes to answer ``--help`` and a usage error (an unknown key).

    python benchmarks/usage_errors.py            # every tool, best of 3
    python benchmarks/usage_errors.py --repeat 5 segexp segexp-compare

Runs the installed console scripts in a fresh temporary folder (no store, no
``conf/``) and prints, per tool and case, the best and worst wall time, the exit
code and how many lines the tool wrote to stderr. The target is under 2 s for
each on the project's 2-core machines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS = (
    "segexp",
    "segexp-compare",
    "segexp-promote",
    "segexp-predict",
    "segexp-report",
    "segexp-eda",
    "segexp-rerun",
    "segexp-sample",
)
CASES = (("--help",), ("nosuchkey=1",))


def _command(tool: str) -> list[str]:
    found = shutil.which(tool) or str(Path(sys.executable).parent / tool)
    return [found]


def measure(
    tool: str, args: tuple[str, ...], repeat: int, cwd: Path
) -> tuple[float, float, int, int]:
    times, code, err_lines = [], 0, 0
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(
            [*_command(tool), *args], cwd=cwd, env=env, capture_output=True, text=True
        )
        times.append(time.perf_counter() - start)
        code, err_lines = done.returncode, len(done.stderr.strip().splitlines())
    return min(times), max(times), code, err_lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tools", nargs="*", default=list(TOOLS))
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segexp-usage-") as folder:
        print(f"{'tool':<16} {'args':<12} {'best':>6} {'worst':>6}  exit  stderr lines")
        for tool in options.tools:
            for args in CASES:
                best, worst, code, lines = measure(tool, args, options.repeat, Path(folder))
                print(
                    f"{tool:<16} {' '.join(args):<12} {best:6.2f} {worst:6.2f}  {code:>4}  {lines}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
