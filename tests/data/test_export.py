"""segexp.data.export: the one CSV writer escapes formula-looking text cells, and only those."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import compose_config
from mlflow.tracking import MlflowClient

from segexp.data.export import csv_text, formula_counts, write_table
from segexp.jobs.job import run_job
from segexp.tracking.assignments import download_assignments

PAYLOADS = ['=HYPERLINK("http://x")', "+33 1 23", "-cmd", "@SUM(A1)", "\tx", "=\nx"]
NUMBERS = ["-3.5", "+12", "-1e5", ".5"]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_text_cells_header_and_index_that_start_like_formulas_get_a_quote():
    frame = pd.DataFrame(
        {"=name": PAYLOADS, "plain": ["a"] * 6, "n": [-1.5, 2, 3, 4, 5, 6]},
        index=["-a", "b", "c", "d", "e", "f"],
    )
    rows = _cells(csv_text(frame, index=True))
    assert rows[0] == ["", "'=name", "plain", "n"]
    assert [r[1] for r in rows[1:]] == ["'" + p for p in PAYLOADS]
    assert rows[1][0] == "'-a" and rows[1][3] == "-1.5"  # numbers are not formulas
    assert formula_counts(frame) == {"=name": 6, "header": 1}
    carriage = csv_text(pd.DataFrame({"c": ["\rx"]}))  # (a bare CR is not quoted by pandas)
    assert carriage == "c\n'\rx\n"


def test_numbers_written_as_text_and_mixed_columns():
    frame = pd.DataFrame({"t": NUMBERS, "o": pd.Series(["=1", 2, None, "x"], dtype=object)})
    rows = _cells(csv_text(frame))
    assert [r[0] for r in rows[1:]] == NUMBERS
    assert [r[1] for r in rows[1:]] == ["'=1", "2", "", "x"]
    assert frame["o"].iloc[0] == "=1"  # the caller's frame is not changed


def test_format_is_the_one_asked_not_the_file_name(tmp_path):
    table = pa.table({"id": ["0001", "=x"], "segment": [1, 2]})
    staged = tmp_path / ".out.parquet.abc.tmp"  # a temporary name, as outputs.staged makes
    write_table(table, staged, "parquet")
    assert pq.read_table(staged).to_pylist() == table.to_pylist()  # Parquet keeps cells
    write_table(table, tmp_path / "x.tmp", "tsv", escape=False)
    assert (tmp_path / "x.tmp").read_text().splitlines() == ["id\tsegment", "0001\t1", "=x\t2"]


def test_numbers_written_as_text_are_not_counted_as_formulas():
    frame = pd.DataFrame({"income": pd.array(["-5", "+12", "40"], dtype="string"), "n": [1, 2, 3]})
    assert formula_counts(frame) == {}  # no "0 cells may run as formulas" line


def test_a_runs_assignments_csv_escapes_formula_ids_and_reads_them_back(tmp_path, store):
    ids = [f'=HYPERLINK("x{i}")' if i % 10 == 0 else f"C{i:04d}" for i in range(60)]
    frame = pd.DataFrame(
        {"customer_id": ids, "spend": [float(i % 7 + i // 20 * 30) for i in range(60)]}
    )
    frame["visits"] = [i % 5 + i // 20 * 10 for i in range(60)]
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    outcome = run_job(
        compose_config(
            [f"mlflow.tracking_uri={store}", f"data.path={path}", "k=3", "plots.enabled=false"]
        )
    )
    assert outcome.status == "finished", outcome.message
    client = MlflowClient(store)
    local = client.download_artifacts(outcome.run_id, "assignments.csv", str(tmp_path / "raw"))
    written = {row[0] for row in _cells(Path(local).read_text(encoding="utf-8"))[1:]}
    assert '\'=HYPERLINK("x0")' in written and '=HYPERLINK("x0")' not in written
    back = download_assignments(client, outcome.run_id, tmp_path / "back", id_column="first")
    assert sorted(back["customer_id"]) == sorted(ids)  # segexp reads its own escaping back
