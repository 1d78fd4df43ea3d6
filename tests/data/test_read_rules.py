"""The reader's general rules: ids decided on the whole column, encodings checked to the
last byte, regular files only, decimal commas, export missing markers, hints that exist."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import mall_data_cfg, run_cli
from mlflow.tracking import MlflowClient

from segexp.data import load_customers
from segexp.data.read import read_table_file
from segexp.errors import DataError
from segexp.tools.predict import read_cells, scoring_frame

DATA_OPTIONS = ("mall_sample", "transactions_sample")


def load(path, **overrides):
    return load_customers(mall_data_cfg(path=str(path), **overrides))


def customers_csv(path: Path, ids: list[str], sep: str = ",") -> Path:
    """A customer table with the given ids and three numeric columns."""
    rng = np.random.default_rng(3)
    lines = [sep.join(["CustomerID", "Age", "Income", "Score"])]
    for customer in ids:
        age, income, score = rng.integers(18, 70), rng.integers(15, 140), rng.integers(1, 99)
        lines.append(sep.join([customer, str(age), str(income), str(score)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def file_ids(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row[0] for row in list(csv.reader(handle))[1:]]


# ------------------------------------------------------------------ ids: the whole column


def test_zero_padding_after_five_thousand_plain_ids_is_kept_for_every_row(tmp_path):
    ids = [str(1000 + i) for i in range(5000)] + [f"{i:06d}" for i in range(10, 310)]
    path = customers_csv(tmp_path / "c.csv", ids)
    table = load(path)
    assert table.id_column == "customer_id"
    assert table.frame["customer_id"].tolist() == file_ids(path) == ids
    assert read_table_file(path)["CustomerID"].tolist() == ids
    assert table.frame["age"].dtype == np.int64  # the other columns stay numbers


@pytest.mark.parametrize("first", [12345678901234567890, 12345678901234567890123])
def test_ids_beyond_int64_are_text_ids(tmp_path, first):
    ids = [str(first + 7919 * i) for i in range(300)]
    path = customers_csv(tmp_path / "c.csv", ids)
    table = load(path)
    assert table.id_column == "customer_id"
    assert table.frame["customer_id"].tolist() == ids
    assert table.schema.numeric == ["age", "annual_income", "spending_score"]


def test_twenty_digit_ids_run_from_the_command_line(tmp_path, store):
    ids = [str(12345678901234567890 + 7919 * i) for i in range(200)]
    path = customers_csv(tmp_path / "c.csv", ids)
    result = run_cli(
        [f"data.path={path}", f"mlflow.tracking_uri={store}", "plots.enabled=false"], tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs if r.data.tags.get("segexp.kind") == "job"] == ["FINISHED"]


# ------------------------------------------------------------------ encodings to the last byte


def utf8_with_latin1_tail(path: Path, rows: int = 60000) -> tuple[Path, int, int]:
    """A UTF-8 file (accents in its head) with one Latin-1 byte after its first MiB:
    (path, the byte's offset, its line)."""
    lines = ["CustomerID,Age,Income,Score,Name", "1,30,40,50,Zoë"]
    lines += [f"{i},{20 + i % 50},{15 + i % 120},{1 + i % 98},name{i}" for i in range(2, rows)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    offset = len(data) + len(f"{rows},30,50,50,Jos")
    data += f"{rows},30,50,50,José\n".encode("latin-1")
    path.write_bytes(data)
    assert offset > 1 << 20
    return path, offset, rows + 1


def test_a_latin1_byte_after_the_first_mib_is_named_with_its_offset_and_line(tmp_path):
    path, offset, line = utf8_with_latin1_tail(tmp_path / "c.csv")
    with pytest.raises(DataError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: unreadable encoding: byte {offset} (line {line})")
    assert "data.encoding=cp1252" in message
    with path.open("rb") as handle:  # the offset is the byte itself
        handle.seek(offset)
        assert handle.read(1) == "é".encode("latin-1")


def test_an_undecodable_byte_in_a_gzipped_file_is_named_too(tmp_path):
    import gzip

    path, offset, line = utf8_with_latin1_tail(tmp_path / "c.csv")
    zipped = tmp_path / "c.csv.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match=rf"byte {offset} \(line {line}\)"):
        load(zipped)


def test_a_configured_encoding_reads_the_whole_file(tmp_path):
    path = tmp_path / "c.csv"
    rows = [f"{i},{20 + i % 50},{15 + i % 120},{1 + i % 98},name{i}" for i in range(1, 60000)]
    text = "CustomerID,Age,Income,Score,Name\n" + "\n".join(rows) + "\n60000,30,50,50,José\n"
    path.write_bytes(text.encode("latin-1"))
    table = load(path, encoding="latin-1")
    assert table.frame["Name"].iloc[-1] == "José"
    assert len(table.frame) == 60000


# ------------------------------------------------------------------ regular files only


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_is_refused_without_opening_it(tmp_path):
    pipe = tmp_path / "customers.csv"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match="named pipe"):
        load(pipe)  # opening it would block until a writer came
    with pytest.raises(DataError, match=r"^input=.*named pipe .*set input="):
        read_cells(pipe, {})


def test_a_device_is_refused(tmp_path):
    with pytest.raises(DataError, match="/dev/zero: is a device, not a regular file"):
        load("/dev/zero")


# ------------------------------------------------------------------ decimal commas


def semicolon_table(path: Path, cells: list[tuple[str, str]]) -> Path:
    lines = ["CustomerID;Age;Income;Score"]
    lines += [f"{i:04d};{30 + i};{income};{score}" for i, (income, score) in enumerate(cells)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_decimal_commas_are_detected_when_the_decimal_is_not_set(tmp_path):
    cells = [("26,5", "1,5"), ("40,25", "82"), ("3,75", "7,0"), ("100", "50,5")]
    path = semicolon_table(tmp_path / "c.csv", cells)
    frame = load(path, decimal=None).frame
    assert frame["annual_income"].tolist() == [26.5, 40.25, 3.75, 100.0]
    assert frame["spending_score"].tolist() == [1.5, 82.0, 7.0, 50.5]
    with pytest.raises(DataError, match="set data.decimal=','"):
        load(path, decimal=".")  # a "." the user set is what they asked for
    assert load(path).frame["annual_income"].tolist()[0] == 26.5  # the shipped null detects


def test_decimal_points_stay_points_when_the_decimal_is_not_set(tmp_path):
    dots = semicolon_table(tmp_path / "dots.csv", [("26.5", "1.5"), ("40", "82"), ("3", "7")])
    assert load(dots, decimal=None).frame["annual_income"].tolist() == [26.5, 40.0, 3.0]
    comma_file = tmp_path / "comma.csv"
    comma_file.write_text('CustomerID,Age,Income,Score\n1,30,"26,5",1\n2,40,"40,5",2\n3,50,7,3\n')
    frame = read_table_file(comma_file, {"decimal": None})  # comma-separated: no decimal commas
    assert frame["Income"].tolist() == ["26,5", "40,5", "7"]


# ------------------------------------------------------------------ missing markers of exports


def test_export_markers_are_missing_in_the_reader_and_in_predict(tmp_path):
    path = tmp_path / "c.csv"
    markers = ["(blank)", "N/A", "#N/A", "NULL", "null", "-", "?"]
    rows = [f"C{i},{20 + i},{marker}" for i, marker in enumerate(markers)]
    path.write_text("id,age,income\n" + "\n".join([*rows, "X,60,42.5"]) + "\n")
    frame = read_table_file(path)
    assert frame["income"].dtype == np.float64
    assert frame["income"].isna().tolist() == [True] * len(markers) + [False]
    scored = scoring_frame(read_cells(path, {}), path)  # predict reads the same cells
    assert scored["income"].isna().tolist() == [True] * len(markers) + [False]
    assert scored["age"].notna().all()


def test_predict_reads_markers_as_missing_when_no_cell_is_blank(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,age,income\nA,20,NA\nB,31,5\n")  # no blank cell anywhere
    scored = scoring_frame(read_cells(path, {}), path)
    assert scored["income"].isna().tolist() == [True, False]


def test_parquet_text_markers_are_missing_whatever_the_other_cells(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame({"id": ["A", "B", "C"], "region": ["NA", "North", "(blank)"]}).to_parquet(path)
    assert read_table_file(path)["region"].isna().tolist() == [True, False, True]
    scored = scoring_frame(read_cells(path, {}), path)
    assert scored["region"].isna().tolist() == [True, False, True]
