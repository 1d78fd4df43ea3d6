"""Bad customer tables: each is a one-line error naming the file, column, rows and the fix."""

from __future__ import annotations

import pytest
from conftest import mall_data_cfg, run_cli
from mlflow.tracking import MlflowClient

from segexp.data import load_customers, validate_feature_table
from segexp.errors import ConfigError, DataError
from segexp.jobs.validation import check_job_config

HEADER = "CustomerID,Genre,Age,Annual Income (k$),Spending Score (1-100)"
GOOD_ROWS = [
    "0001,Male,19,15,39",
    "0002,Male,21,15,81",
    "0003,Female,20,16,6",
    "0004,Female,23,16,77",
    "0005,Female,31,17,40",
    "0006,Female,22,17,76",
]


def write_rows(tmp_path, rows, header=HEADER, name="customers.csv"):
    path = tmp_path / name
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))
    return path


def replace_row(position: int, row: str) -> list[str]:
    """GOOD_ROWS with the row at list position ``position`` (file row position + 2) replaced."""
    rows = list(GOOD_ROWS)
    rows[position] = row
    return rows


def load_error(path, features=("age", "annual_income", "spending_score"), impute="none", **cfg):
    """The error loading and validating ``path`` raises (fails the test if none)."""
    with pytest.raises((DataError, ConfigError)) as info:
        table = load_customers(mall_data_cfg(path=str(path), **cfg))
        validate_feature_table(table, list(features), impute=impute, config_key="features.columns")
    message = str(info.value)
    assert "\n" not in message
    return message


def assert_fragments(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_missing_file_suggests_a_close_name(tmp_path):
    write_rows(tmp_path, GOOD_ROWS, name="customers.csv")
    message = load_error(tmp_path / "custmers.csv")
    assert_fragments(
        message, "custmers.csv", "file not found", "did you mean 'customers.csv'", "data.path"
    )


@pytest.mark.parametrize("content", [b"", b"\r\n  \r\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    assert_fragments(load_error(path), str(path), "the file is empty", "header row")


def test_header_only(tmp_path):
    path = write_rows(tmp_path, [])
    assert_fragments(load_error(path), str(path), "has a header", "but no customer rows")


def test_unreadable_encoding_without_bom(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("\r\n".join([HEADER, *GOOD_ROWS]).encode("utf-16-le"))
    assert_fragments(
        load_error(path), str(path), "unreadable encoding", "set data.encoding", "utf-16"
    )


def test_configured_encoding_that_does_not_fit(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("\r\n".join([HEADER, "0001,Mäle,19,15,39"]).encode("latin-1"))
    message = load_error(path, encoding="utf-8")
    assert_fragments(message, str(path), "unreadable encoding", "not valid utf-8", "data.encoding")


def test_excel_workbook_is_named(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert_fragments(load_error(path), "zip archive", "Excel", "save it as CSV")


def test_ragged_rows_cannot_be_parsed(tmp_path):
    path = write_rows(tmp_path, replace_row(2, "0003,Female,20,16,6,extra"))
    assert_fragments(load_error(path), str(path), "cannot parse", "line 4", "data.delimiter")


def test_repeated_header_name(tmp_path):
    path = write_rows(tmp_path, [r + ",20" for r in GOOD_ROWS], header=HEADER + ",Age")
    assert_fragments(load_error(path), str(path), "names column 'Age' more than once")


def test_corrupt_gzip_file(tmp_path):
    path = tmp_path / "customers.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00broken")
    assert_fragments(load_error(path), str(path), "cannot read the file")


def test_unknown_feature_suggests_the_closest_column(tmp_path):
    path = write_rows(tmp_path, GOOD_ROWS)
    message = load_error(path, features=["annual_incme", "spending_score"])
    assert_fragments(
        message,
        str(path),
        "feature 'annual_incme' (from features.columns) is not a column",
        "did you mean 'annual_income'",
    )


def test_unknown_declared_column_suggests_the_closest(tmp_path):
    path = write_rows(tmp_path, GOOD_ROWS)
    message = load_error(path, numeric=["age", "annual_incom", "spending_score"])
    assert_fragments(
        message, "data.numeric names column 'annual_incom'", "did you mean 'annual_income'"
    )


def test_text_in_a_numeric_column_names_rows_and_values(tmp_path):
    rows = replace_row(2, "0003,Female,twenty,16,6")
    rows[4] = "0005,Female,31?,17,40"
    path = write_rows(tmp_path, rows)
    message = load_error(path)
    assert_fragments(
        message, str(path), "column 'age' must be numeric", "rows 4, 6", "'twenty'", "'31?'"
    )


def test_decimal_comma_gets_a_hint(tmp_path):
    path = tmp_path / "euro.csv"
    path.write_text("customer_id;gender;age;annual_income;spending_score\n1;Male;19;15,5;39\n")
    # data.decimal=null (the default) detects it; a '.' the user set gets the hint
    assert load_customers(mall_data_cfg(path=str(path))).frame["annual_income"].iloc[0] == 15.5
    assert_fragments(load_error(path, decimal="."), "'15,5'", "data.decimal=','")


def test_all_empty_column(tmp_path):
    rows = [",".join(r.split(",")[:2] + ["", *r.split(",")[3:]]) for r in GOOD_ROWS]
    path = write_rows(tmp_path, rows)
    message = load_error(path, impute="median")
    assert_fragments(message, str(path), "feature 'age' is empty in every row", "features.columns")


def test_constant_feature(tmp_path):
    rows = [",".join(r.split(",")[:4] + ["50"]) for r in GOOD_ROWS]
    path = write_rows(tmp_path, rows)
    message = load_error(path)
    assert_fragments(
        message, "feature 'spending_score' is constant", "50", "cannot separate customers"
    )


def test_id_column_is_not_a_feature(tmp_path):
    path = write_rows(tmp_path, GOOD_ROWS)
    message = load_error(path, features=["customer_id", "age"])
    assert_fragments(message, "feature 'customer_id'", "is the id column")


def test_duplicate_customer_ids(tmp_path):
    rows = replace_row(3, "0002,Female,23,16,77")
    rows[5] = "0002,Female,22,17,76"
    path = write_rows(tmp_path, rows)
    message = load_error(path)
    assert_fragments(
        message,
        str(path),
        "duplicate customer ids in column 'customer_id'",
        "'0002' in rows 3, 5, 7",
        "each customer must appear once",
    )


def test_blank_customer_id(tmp_path):
    path = write_rows(tmp_path, replace_row(1, ",Male,21,15,81"))
    assert_fragments(load_error(path), "id column 'customer_id' is empty in row 3")


@pytest.mark.parametrize(
    ("row", "column", "value"),
    [
        ("0004,Female,-23,16,77", "'age'", "-23"),
        ("0004,Female,23,-16,77", "'annual_income' (file header 'Annual Income (k$)')", "-16"),
    ],
)
def test_negative_values_where_impossible(tmp_path, row, column, value):
    """A renamed column is named as segexp calls it and as the file's header says it."""
    path = write_rows(tmp_path, replace_row(3, row))
    message = load_error(path)
    assert_fragments(
        message, f"column {column} cannot be negative", "in row 5", value, "data.non_negative"
    )


def test_negatives_allowed_when_not_declared(tmp_path):
    path = write_rows(tmp_path, replace_row(3, "0004,Female,23,16,-77"))
    table = load_customers(mall_data_cfg(path=str(path), non_negative=["age", "annual_income"]))
    assert table.frame["spending_score"].min() == -77


def test_dates_that_do_not_parse(tmp_path):
    rows = [f"{r},2024-01-0{i + 1}" for i, r in enumerate(GOOD_ROWS)]
    rows[2] = GOOD_ROWS[2] + ",2024-02-30"
    rows[4] = GOOD_ROWS[4] + ",soon"
    path = write_rows(tmp_path, rows, header=HEADER + ",signup")
    message = load_error(path, dates=["signup"])
    assert_fragments(
        message,
        "column 'signup' has values that do not parse as dates",
        "rows 4, 6",
        "'2024-02-30'",
        "data.date_format",
    )


def test_missing_values_fail_by_default_naming_columns_counts_and_rows(tmp_path):
    rows = replace_row(1, "0002,Male,,15,81")
    rows[4] = "0005,Female,,,40"
    path = write_rows(tmp_path, [*rows[:3], "", *rows[3:]])  # a blank line shifts rows
    message = load_error(path)
    assert_fragments(
        message,
        str(path),
        "'age' (2 missing, rows 3, 7)",
        "'annual_income' (1 missing, row 7)",
        "preprocess.impute",
    )
    assert "spending_score" not in message


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("preprocess.impute=zero", ("preprocess.impute", "median", "zero")),
        ("data.kind=orders", ("data.kind", "transactions", "orders")),
    ],
)
def test_unknown_impute_and_kind_are_refused_by_the_job_config_check(
    make_config, override, fragments
):
    """Checked once, before any data is read (the battery runs them on the command line)."""
    with pytest.raises(ConfigError) as info:
        check_job_config(make_config([override]))
    assert_fragments(str(info.value), *fragments)


def test_unknown_format_is_a_config_error(tmp_path):
    path = write_rows(tmp_path, GOOD_ROWS)
    assert_fragments(load_error(path, format="xlsx"), "data.format", "parquet", "'xlsx'")


@pytest.mark.slow
def test_cli_reports_bad_data_with_exit_code_2_and_no_run(tmp_path, store):
    path = write_rows(tmp_path, replace_row(3, "0004,Female,-23,16,77"))
    result = run_cli([f"data.path={path}", f"mlflow.tracking_uri={store}"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "column 'age' cannot be negative" in output
    assert "Traceback" not in output
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments) == []
