"""How long ``check_job_config`` takes per packaged algorithm once scikit-learn is loaded: a
basic sweep checks every job's config before the first runs, so this times each job's share.

    python benchmarks/config_checks.py [--repeat 100]

The target is under 50 ms per check on the project's 2-core machines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_module

from segexp.jobs import validation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    options = parser.parse_args()
    folder = Path(validation.__file__).parents[1] / "conf" / "algo"
    print(f"{'algo':<18} {'first (ms)':>10} {'then (ms)':>10}")
    with initialize_config_module("segexp.conf", version_base="1.3"):
        for algo in sorted(p.stem for p in folder.glob("*.yaml")):
            cfg = compose("config", overrides=[f"algo={algo}"])
            started = time.perf_counter()
            validation.check_job_config(cfg)
            first = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(options.repeat):
                validation.check_job_config(cfg)
            then = (time.perf_counter() - started) / options.repeat
            print(f"{algo:<18} {first * 1000:10.1f} {then * 1000:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
