"""Battery: bad customer files given to ``segexp`` (one run and a sweep) and to ``segexp-eda``.

Each case writes its file in ``setup`` and runs the real command line; the
harness asserts one ``segexp: error:`` line, exit 2, and no run or file left.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from tests.battery.harness import case

HEADER = "CustomerID,Genre,Age,Annual Income (k$),Spending Score (1-100)"
ROWS = [
    f"{i:04d},{'Male' if i % 2 else 'Female'},{20 + i % 40},{15 + i},{(i * 7) % 100}"
    for i in range(1, 41)
]


def writes(name: str, text: str | bytes):
    """A setup that writes ``text`` to ``name`` in the case's folder."""

    def setup(folder: Path) -> None:
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        (folder / name).write_bytes(data)

    return setup


def table(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def with_row(position: int, row: str) -> str:
    rows = list(ROWS)
    rows[position] = row
    return table(*rows)


def nested_parquet(folder: Path) -> None:
    """A Parquet table with a list column (each customer's visit days)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 40
    table = pa.table(
        {"id": list(range(n)), "spend": [float(i) for i in range(n)], "visits": [[1, 2]] * n}
    )
    pq.write_table(table, folder / "c.parquet")


def column_as_text(position: int, written) -> str:
    """The table with one column's numbers written as text (``written(number)``)."""
    rows = [row.split(",") for row in ROWS]
    for row in rows:
        row[position] = written(int(row[position]))
    return table(*(",".join(row) for row in rows))


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def gz_of(text: str) -> bytes:
    return gzip.compress(text.encode())


def _dir(name: str):
    return lambda folder: (folder / name).mkdir()


def _fifo(name: str):
    """A named pipe that no one writes to: opening it to read would block for ever."""
    return lambda folder: os.mkfifo(folder / name)


def latin1_after_first_mib() -> bytes:
    """UTF-8 (accents in the head) with one Latin-1 byte after the first MiB, on line
    60002 at byte 1332055 (asserted by the case's message)."""
    rows = [f"{i:05d},Female,{20 + i % 50},{15 + i % 120},{1 + i % 98}" for i in range(2, 60001)]
    text = "\n".join([HEADER, "00001,Zoë,30,40,50", *rows]) + "\n"
    return text.encode("utf-8") + "60001,Jos\xe9,30,50,50\n".encode("latin-1")


GOOD = table(*ROWS)
D = "data.path={dir}/c.csv"

CASES = [
    case(
        "missing-file",
        "data.path={dir}/custmers.csv",
        "custmers.csv",
        "file not found",
        setup=writes("customers.csv", GOOD),
    ),
    case("directory-as-file", "data.path={dir}/folder", "folder", setup=_dir("folder")),
    # not regular files: refused at once, never opened (a named pipe would block for ever)
    case(
        "fifo-as-file",
        "data.path={dir}/c.csv",
        "c.csv",
        "named pipe",
        "data.path",
        setup=_fifo("c.csv"),
        timeout=15,
    ),
    case("device-as-file", "data.path=/dev/zero", "/dev/zero", "device", "data.path", timeout=15),
    case(
        "predict-fifo-input",
        "input={dir}/new.csv output={dir}/out.csv",
        "named pipe",
        "input=",
        module="segexp.predict",
        setup=_fifo("new.csv"),
        timeout=15,
    ),
    case(
        "latin1-byte-after-first-mib",
        D,
        "c.csv",
        "unreadable encoding",
        "byte 1332055 (line 60002)",
        "not valid utf-8",
        "data.encoding=cp1252",
        setup=writes("c.csv", latin1_after_first_mib()),
    ),
    case("empty-file", D, "c.csv", "empty", setup=writes("c.csv", "")),
    case("blank-lines-only", D, "c.csv", "empty", setup=writes("c.csv", "\r\n  \r\n")),
    case("header-only", D, "c.csv", "no customer rows", setup=writes("c.csv", table())),
    case(
        "utf16-without-bom", D, "c.csv", "encoding", setup=writes("c.csv", GOOD.encode("utf-16-le"))
    ),
    case(
        "excel-workbook",
        "data.path={dir}/c.xlsx",
        "c.xlsx",
        setup=writes("c.xlsx", b"PK\x03\x04" + b"\0" * 200),
    ),
    case(
        "corrupt-gzip",
        "data.path={dir}/c.csv.gz",
        "c.csv.gz",
        setup=writes("c.csv.gz", gz_of(GOOD)[:40]),
    ),
    case(
        "parquet-list-column",
        "data.path={dir}/c.parquet",
        "column 'visits' holds list",
        "not one value per customer",
        setup=nested_parquet,
    ),
    case(
        "constant-columns",
        D,
        "found no numeric column",
        "a (excluded: constant",
        setup=writes("c.csv", "id,a,b\n" + "".join(f"{i},1,2\n" for i in range(1, 41))),
    ),
    case(
        "delimiter-does-not-split",
        D + " data.delimiter=tab",
        "with data.delimiter='\\t' the file is one column",
        "split by ','",
        setup=writes("c.csv", GOOD),
    ),
    case("quotechar-two", D + " data.quotechar=ab", "data.quotechar", "one character", "'ab'"),
    case("delimiter-two", D + " data.delimiter=ab", "data.delimiter", "one character", "'ab'"),
    case("decimal-letter", D + " data.decimal=x", "data.decimal", "'.', ','", "'x'"),
    case("aliases-text", D + " data.aliases=abc", "data.aliases", "file headers", "'abc'"),
    case("dayfirst-word", D + " data.dayfirst=maybe", "data.dayfirst", "true or false"),
    case(
        "eda-quotechar-two",
        D + " data.quotechar=ab",
        "data.quotechar",
        "one character",
        module="segexp.eda",
    ),
    case("ragged-rows", D, "c.csv", setup=writes("c.csv", with_row(3, "0004,Female,23,16,77,9,9"))),
    case(
        "repeated-header",
        D,
        "c.csv",
        "Age",
        setup=writes(
            "c.csv", table(*ROWS, header="CustomerID,Genre,Age,Age,Spending Score (1-100)")
        ),
    ),
    case(
        "text-in-numeric",
        D,
        "c.csv",
        "age",
        "row",
        setup=writes("c.csv", with_row(5, "0006,Female,twenty,17,76")),
    ),
    case(
        "decimal-comma",  # the shipped data.decimal=null detects it; a '.' the user set does not
        D + " data.decimal=. features.columns=[Rate,Age]",
        "column 'Rate' must be numeric",
        "data.decimal=','",
        setup=writes(
            "c.csv",
            table(
                *[r.replace(",", ";") + f";{i % 9},{i % 7 + 1}" for i, r in enumerate(ROWS)],
                header=HEADER.replace(",", ";") + ";Rate",
            ),
        ),
    ),
    case(
        "duplicate-ids",
        D,
        "c.csv",
        "duplicate customer ids",
        "'0001' in rows 2, 3",
        setup=writes("c.csv", with_row(1, ROWS[0])),
    ),
    case(
        "blank-id",
        D,
        "c.csv",
        "id column 'customer_id' is empty in row 4",
        setup=writes("c.csv", with_row(2, ",Female,20,16,6")),
    ),
    case(
        "negative-income",
        D,
        "c.csv",
        "'annual_income' (file header 'Annual Income (k$)') cannot be negative",
        "row 6",
        setup=writes("c.csv", with_row(4, "0005,Female,31,-17,40")),
    ),
    case(
        "infinite-cell",
        D,
        "c.csv",
        "beyond the float64 range",
        setup=writes("c.csv", with_row(4, "0005,Female,31,inf,40")),
    ),
    case(
        "absurd-number",
        D,
        "c.csv",
        "too large",
        setup=writes("c.csv", with_row(4, "0005,Female,31,1e308,40")),
    ),
    case(
        "missing-values",
        D,
        "c.csv",
        "missing",
        setup=writes("c.csv", with_row(4, "0005,Female,31,,40")),
    ),
    case(
        "unknown-feature-column",
        D + " features.columns=[age,incme]",
        "incme",
        setup=writes("c.csv", GOOD),
    ),
    case(
        "features-not-in-table",
        "data.path={dir}/c.csv features=income_spending",
        "features=income_spending",
        "all_numeric",
        setup=writes(
            "c.csv",
            table("1,5,7", "2,6,8", "3,1,2", "4,9,9", "5,3,3", "6,2,8", header="id,visits,basket"),
        ),
    ),
    case("unknown-id-column", D + " data.id_column=CustID", "CustID", setup=writes("c.csv", GOOD)),
    case(
        "missing-label-column",
        D + " data.label_column=segment",
        "segment",
        setup=writes("c.csv", GOOD),
    ),
    case(
        "fewer-customers-than-k",
        D + " k=8",
        "fewer than k=8",
        setup=writes("c.csv", table(*ROWS[:5])),
    ),
    case("unknown-impute", D + " preprocess.impute=mode", "mode", setup=writes("c.csv", GOOD)),
    case("unknown-data-kind", D + " data.kind=ledger", "ledger", setup=writes("c.csv", GOOD)),
    case(
        "numbers-listed-as-dates",
        D + " data.dates=[Age]",
        "'age'",
        "holds numbers",
        "data.dates",
        setup=writes("c.csv", GOOD),
    ),
    case(
        "sweep-on-missing-file", "-m k=3,4 data.path={dir}/nope.csv", "nope.csv", "file not found"
    ),
    case(
        "sweep-on-text-cell",
        "-m k=3,4 " + D,
        "age",
        "row",
        setup=writes("c.csv", with_row(5, "0006,Female,twenty,17,76")),
    ),
    # numbers written as text leave the Mall feature group: never one-hot encoded
    case(
        "income-as-dollars",
        D,
        "feature 'annual_income'",
        "not a number or a category",
        "features=all_numeric",
        setup=writes("c.csv", column_as_text(3, lambda n: f'"${n * 1000:,}"')),
    ),
    case(
        "score-as-percent",
        D,
        "feature 'spending_score'",
        "not a number or a category",
        setup=writes("c.csv", column_as_text(4, lambda n: f"{n}%")),
    ),
    case(
        "income-full-width-digits",
        D,
        "feature 'annual_income'",
        "not a number or a category",
        setup=writes("c.csv", column_as_text(3, lambda n: str(n).translate(FULL_WIDTH))),
    ),
    case("eda-missing-file", "data.path={dir}/nope.csv", "nope.csv", module="segexp.eda"),
    case("eda-empty-file", D, "empty", module="segexp.eda", setup=writes("c.csv", "")),
]


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_bad_data_file_is_one_line_error(battery, c):
    battery(c)
