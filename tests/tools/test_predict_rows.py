"""segexp-predict's row contract, through the command line a user runs.

Rows in = rows scored + rows rejected, on a 10,000-row file of which 5% are bad in
several ways; every cell comes back as the file had it; outputs are never
overwritten without overwrite=true; formula-looking cells are counted and escaped.
A real fit and promotion (CLI) in a temporary store; predict as a subprocess.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_cli

HEADER = ["CustomerID", "Genre", "Age", "Annual Income (k$)", "Spending Score (1-100)", "Note"]
ROWS = 10_000
INCOME = "Annual Income (k$)"

# kind -> (line written into the file, the reject reason expected)
BAD = {
    "blank": ("", "empty row (a blank line or only delimiters)"),
    "delimiters": (",,,,,", "empty row (a blank line or only delimiters)"),
    "negative": ("{id},Male,30,-20,50,x", f"{INCOME}: '-20' cannot be negative"),
    "huge": ("{id},Male,30,1e308,50,x", f"{INCOME}: '1e308' is too large to compute with"),
    "inf": ("{id},Male,30,inf,50,x", f"{INCOME}: 'inf' is not a finite number"),
    "text": ("{id},Male,30,lots,50,x", f"{INCOME}: 'lots' is not a number"),
    "missing": ("{id},Male,30,,50,x", f"{INCOME} is missing"),
    "marker": ("{id},Male,30,NA,50,x", f"{INCOME} is missing"),
    "too many": ("{id},Male,30,20,50,x,surplus", "the row has 7 fields, the header 6"),
    "too few": ("{id},Male,30,20", "the row has 4 fields, the header 6"),
}

# good rows whose cells must come back byte for byte (CSV values)
TRICKY = [
    "{id}, Female ,  31 ,070, 50 ,  spaced  ",
    '{id},Female,22,15.50,81,"quoted, with comma"',
    '{id},Male,45,60,40,"say ""hi"""',
    "{id},Male,45,60,40,",
    "{id},NA,45,60,40,NA",
    '{id},Female,38,55.0,55,=HYPERLINK("http://x")',
    "{id},Female,38,55,55,+33 1 23",
    "{id},Female,38,55,55,@SUM(A1)",
    "{id},Female,38,55,55,-3.5",
    "{id},Female,38,55,55,-1e5",
]
FORMULAS = 3  # =HYPERLINK, +33 1 23, @SUM among the tricky rows (-3.5 and -1e5 are numbers)


@pytest.fixture(scope="module")
def promoted(tmp_path_factory, _template_store, mall_csv):
    """A k-means run of the Mall file fitted and promoted through the command line."""
    folder = tmp_path_factory.mktemp("predict-rows")
    shutil.copy(_template_store, folder / "mlflow.db")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    fit = run_cli(
        [f"data.path={mall_csv}", "k=5", "plots.enabled=false", f"mlflow.tracking_uri={store}"],
        folder,
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    promote = run_cli(
        [
            "best=silhouette",
            "scope=experiment",
            "report.enabled=false",
            f"mlflow.tracking_uri={store}",
        ],
        folder,
        module="segexp.promote",
    )
    assert promote.returncode == 0, promote.stderr[-3000:]
    return store


def mall_lines(mall_csv: Path) -> list[list[str]]:
    with mall_csv.open(newline="") as handle:
        return list(csv.reader(handle))[1:]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory, mall_csv):
    """10,000 rows: 9,500 good (Mall rows, the tricky ones among them), 500 bad (50 of
    each kind of BAD), at fixed places. Returns (path, {file row: expected reason},
    {file row: the good line's cells})."""
    folder = tmp_path_factory.mktemp("predict-rows-file")
    mall = mall_lines(mall_csv)
    lines, bad, good = [",".join(HEADER)], {}, {}
    kinds = list(BAD)
    for i in range(ROWS):
        row = i + 2  # the header is row 1
        ident = f"{i:06d}"
        if i % 20 == 7:  # 5%: 500 bad rows, each kind 50 times
            template, reason = BAD[kinds[(i // 20) % len(kinds)]]
            lines.append(template.format(id=ident))
            bad[row] = reason
            continue
        if i % 97 == 3:
            text = TRICKY[(i // 97) % len(TRICKY)].format(id=ident)
        else:
            cells = mall[i % len(mall)]
            text = ",".join([ident, *cells[1:], f"note {i}"])
        lines.append(text)
        good[row] = next(csv.reader([text]))
    path = folder / "customers.csv"
    path.write_text("\n".join(lines) + "\n")
    assert len(bad) == 500 and len(good) == 9_500
    return path, bad, good


def predict_cli(store: str, cwd: Path, *args: str):
    return run_cli([*args, f"mlflow.tracking_uri={store}"], cwd, module="segexp.predict")


def read_csv_cells(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("segexp: error:")]


@pytest.fixture(scope="module")
def scored(promoted, big_file, tmp_path_factory):
    path, _, _ = big_file
    folder = tmp_path_factory.mktemp("predict-rows-out")
    done = predict_cli(promoted, folder, f"input={path}", "output=out.csv", "rejects=rejects.csv")
    return folder, done


def test_model_knows_the_non_negative_columns(promoted, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(promoted, registry_uri=promoted)
    version = client.get_model_version_by_alias("customer-segments", "champion")
    local = client.download_artifacts(version.run_id, "model/meta.json", str(tmp_path))
    meta = json.loads(Path(local).read_text())
    assert {"annual_income", "spending_score"} <= set(meta["non_negative"])
    assert set(meta["non_negative"]) <= set(meta["input_columns"])


def test_rows_in_equal_rows_scored_plus_rows_rejected(scored, big_file):
    folder, done = scored
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "9500 of 10000 customers scored with models:/customer-segments@champion -> out.csv; "
        "500 rejected -> rejects.csv"
    ) in done.stdout
    out = read_csv_cells(folder / "out.csv")
    rejects = read_csv_cells(folder / "rejects.csv")
    assert len(out) - 1 + len(rejects) - 1 == ROWS
    assert out[0] == [*HEADER, "segment", "segment_name"]
    assert rejects[0] == ["row", *HEADER, "reason"]


def test_each_reject_has_its_file_row_and_reason(scored, big_file):
    folder, _ = scored
    _, bad, _ = big_file
    rejects = read_csv_cells(folder / "rejects.csv")[1:]
    assert [int(r[0]) for r in rejects] == sorted(bad)
    for record in rejects:
        expected = bad[int(record[0])]
        assert record[-1].startswith(expected), (record, expected)
    too_many = [r for r in rejects if r[-1].startswith("the row has 7")]
    assert too_many and all("'surplus'" in r[-1] for r in too_many)
    # a rejected row keeps its cells: the id, the offending value
    huge = next(r for r in rejects if "1e308" in r[-1])
    assert huge[HEADER.index(INCOME) + 1] == "1e308"
    assert re.fullmatch(r"\d{6}", huge[1])


def test_every_cell_comes_back_as_the_file_had_it(scored, big_file):
    folder, _ = scored
    _, _, good = big_file
    out = read_csv_cells(folder / "out.csv")[1:]
    assert [r[: len(HEADER)] for r in out] == list(good.values())  # byte for byte, in order
    cells = {tuple(r[: len(HEADER)]) for r in out}
    assert ("000003", " Female ", "  31 ", "070", " 50 ", "  spaced  ") in cells
    assert any(r[3] == "15.50" and r[5] == "quoted, with comma" for r in out)
    assert any(r[5] == 'say "hi"' for r in out)
    assert any(r[1] == "NA" and r[5] == "NA" for r in out)
    assert all(r[0].isdigit() and len(r[0]) == 6 for r in out)  # zero-padded ids stay
    assert {int(r[len(HEADER)]) for r in out} <= set(range(5))


def test_formula_cells_are_counted_in_one_warning(scored):
    _, done = scored
    warnings = [line for line in done.stderr.splitlines() if "formula" in line]
    assert len(warnings) == 1
    count = int(re.search(r"warning: (\d+) cells", warnings[0]).group(1))
    assert count >= FORMULAS and "columns: Note" in warnings[0]
    assert "escape_formulas=true" in warnings[0]


def test_escape_formulas_prefixes_a_quote_and_leaves_numbers(promoted, big_file, tmp_path):
    path, _, _ = big_file
    done = predict_cli(
        promoted, tmp_path, f"input={path}", "output=o.csv", "rejects=r.csv", "escape_formulas=true"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "segexp: note: escaped" in done.stderr
    notes = [r[5] for r in read_csv_cells(tmp_path / "o.csv")[1:]]
    assert '\'=HYPERLINK("http://x")' in notes and "'+33 1 23" in notes and "'@SUM(A1)" in notes
    assert "-3.5" in notes and "-1e5" in notes  # numbers are not formulas
    assert not any(n.startswith(("=", "+", "@")) for n in notes)


def test_bad_rows_without_rejects_are_one_error_and_no_file(promoted, big_file, tmp_path):
    path, _, _ = big_file
    done = predict_cli(promoted, tmp_path, f"input={path}", "output=o.csv")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = error_lines(done.stderr)
    assert f"{path}: 500 row(s) cannot be scored: row 9: " in line
    assert "set rejects=<file>" in line
    assert not (tmp_path / "o.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary file either


def test_existing_outputs_are_refused_unless_overwrite_true(promoted, big_file, tmp_path):
    path, _, _ = big_file
    (tmp_path / "o.csv").write_text("keep me\n")
    done = predict_cli(promoted, tmp_path, f"input={path}", "output=o.csv", "rejects=r.csv")
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        "segexp: error: output=o.csv: the file already exists; set overwrite=true to replace "
        "it, or choose another path"
    ]
    assert (tmp_path / "o.csv").read_text() == "keep me\n"
    assert not (tmp_path / "r.csv").exists()
    (tmp_path / "r.csv").write_text("keep me too\n")
    again = predict_cli(promoted, tmp_path, f"input={path}", "output=new.csv", "rejects=r.csv")
    assert again.returncode == 2 and "rejects=r.csv: the file already exists" in again.stderr
    assert not (tmp_path / "new.csv").exists()
    allowed = predict_cli(
        promoted, tmp_path, f"input={path}", "output=o.csv", "rejects=r.csv", "overwrite=true"
    )
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert len(read_csv_cells(tmp_path / "o.csv")) == 9_501
    assert len(read_csv_cells(tmp_path / "r.csv")) == 501
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "r.csv"]  # no temp files


def test_clean_file_scores_every_row_and_says_none_rejected(promoted, mall_csv, tmp_path):
    done = predict_cli(promoted, tmp_path, f"input={mall_csv}", "output=sub/o.csv")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "200 of 200 customers scored" in done.stdout and "; 0 rejected" in done.stdout
    assert (tmp_path / "sub" / "o.csv").read_text().splitlines()[1].startswith("0001,Male,19,")
    assert "formula" not in done.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
