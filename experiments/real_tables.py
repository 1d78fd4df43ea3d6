"""The chosen run of one sweep on each table shape of ``tests/tables.py``, for two segexp trees.

    python experiments/real_tables.py [--before /tmp/before] [--after .] [--out FILE.md]

For every shape the tests build (bank card usage, wholesale, marketing, invoice lines,
skewed money, bulk plus outliers, wholesale with codes, card jargon) it writes the
table to a temporary folder, runs the same sweep with each tree's code
(``PYTHONPATH=<tree>/src``), reads the sweep's best run back from the store and
prints its name, its segment sizes and its segment names, side by side. A sweep
that fails shows its error line instead. The issue's closing note quotes the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests import tables  # noqa: E402  (the table builders of the test suite)

SWEEP = ["-m", "algo=kmeans,gmm,agglomerative", "k=2..6", "scaler=standard,robust"]
SWEEP += ["preprocess.impute=median"]  # the card table has blank cells
SHAPES = {
    "bank card usage": tables.bank_card_usage,
    "wholesale": tables.wholesale,
    "marketing (tab)": tables.marketing_campaign,
    "invoice lines": tables.invoice_lines,
    "skewed money": tables.skewed_money,
    "bulk plus outliers": tables.bulk_plus_outliers,
    "wholesale with codes": tables.wholesale_customers,
    "card jargon": tables.card_jargon,
}


def chosen_run(tree: Path, data: Path, folder: Path, extra: list[str] | None = None) -> str:
    """'<run name>: sizes <n1/n2/...>; names <a | b | ...>' or the sweep's error line."""
    store = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "HYDRA_FULL_ERROR": ""}
    args = [sys.executable, "-m", "segexp", *SWEEP, *(extra or []), f"data.path={data}"]
    args += [f"mlflow.tracking_uri={store}", "plots.enabled=false"]
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True)
    client = MlflowClient(tracking_uri=store)
    parents = [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id], "tags.`segexp.kind` = 'sweep'")
    ]
    best = parents[0].data.tags.get("segexp.best_run_id") if parents else None
    if best is None:
        said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        why = [line for line in said if "Nothing to rank" in line or "error" in line]
        return f"no choice (exit {done.returncode}): {(why or said or ['(no output)'])[-1][:200]}"
    run = client.get_run(best)
    local = client.download_artifacts(best, "segments.json", str(folder))
    segments = json.loads(Path(local).read_text())["segments"]
    sizes = "/".join(str(s.get("size")) for s in segments)
    names = " | ".join(str(s.get("name")) for s in segments)
    return f"`{run.info.run_name}`: sizes {sizes}; names {names}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=Path("/tmp/before"))
    parser.add_argument("--after", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), help="which tables")
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides for the sweep")
    options = parser.parse_args()
    rows = ["| table | before | after |", "| --- | --- | --- |"]
    for shape in options.shapes:
        build = SHAPES[shape]
        cells = []
        for tree in (options.before, options.after):
            with tempfile.TemporaryDirectory(prefix="segexp-tables-") as name:
                folder = Path(name)
                data = build(folder)
                cells.append(chosen_run(tree.resolve(), data, folder, options.extra))
        rows.append(f"| {shape} | {cells[0]} | {cells[1]} |")
        print(rows[-1], flush=True)
    if options.out:
        options.out.write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
