"""A run's assignments table (each customer's id, features and segment), written and read.

``assignments.csv`` up to ``artifacts.assignments_parquet_above_rows`` customers, Parquet above
(at 10M customers a CSV takes about 30 s and 250 MB, Parquet a second and a quarter of that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from segexp.contract import ASSIGNMENTS_FILE, ASSIGNMENTS_PARQUET
from segexp.data.export import unescape_formulas, write_table


def write_assignments(frame: pd.DataFrame, folder: Path, parquet_above_rows: int) -> str:
    """Write ``frame`` into ``folder`` as CSV or, above ``parquet_above_rows``, Parquet."""
    if len(frame) > parquet_above_rows:
        frame.to_parquet(folder / ASSIGNMENTS_PARQUET, index=False)
        return ASSIGNMENTS_PARQUET
    write_table(frame, folder / ASSIGNMENTS_FILE, "csv")  # ids may start with =, +, -, @
    return ASSIGNMENTS_FILE


def download_assignments(
    client: Any, run_id: str, folder: Path, *, id_column: str | None = None, as_text: bool = False
) -> pd.DataFrame:
    """The run's assignments, read as the job wrote them: the id column (``id_column``;
    ``"first"``: the first column, unless that is ``segment``) as text, zero padding kept;
    ``as_text``: every column as text, missing cells empty."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {a.path for a in client.list_artifacts(run_id)}
    # neither file: MLflow's error names the CSV
    name = ASSIGNMENTS_PARQUET if ASSIGNMENTS_PARQUET in names else ASSIGNMENTS_FILE
    local = Path(client.download_artifacts(run_id, name, str(folder)))
    if name == ASSIGNMENTS_PARQUET:
        frame = pd.read_parquet(local)
        if as_text:
            return frame.astype(str).where(frame.notna(), "")
    elif as_text:
        return pd.read_csv(local, dtype=str, keep_default_na=False).apply(unescape_formulas)
    else:
        if id_column == "first":
            header = pd.read_csv(local, nrows=0).columns
            id_column = str(header[0]) if len(header) else None
        frame = pd.read_csv(
            local,
            dtype={id_column: str} if id_column else None,
            keep_default_na=False,
            na_values=[""],
        ).apply(unescape_formulas)
    if id_column == "first":
        id_column = str(frame.columns[0]) if len(frame.columns) else None
    if id_column and id_column != "segment" and id_column in frame.columns:
        frame[id_column] = frame[id_column].astype(str)
    return frame
