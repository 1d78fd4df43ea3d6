"""Battery: predict's input and every tool's output file (predict, report, compare).

Each case is one command a careless user types; the harness asserts one
``segexp: error:`` line, exit 2, the words of the message and that no run and
no file is left behind (an output refused is not touched; a folder that would
have been created for it is not created).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.battery.harness import STORE_FILE, case, clean_env

UNWRITABLE = "/sys/segexp-battery"  # not writable even by root


def write(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def promoted(then=None):
    """Promote the seeded store's best run (the case needs a champion), then ``then``."""

    def setup(folder: Path) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "segexp.promote",
                "best=silhouette",
                "report.enabled=false",
                f"mlflow.tracking_uri=sqlite:///{folder / STORE_FILE}",
            ],
            cwd=folder,
            env=clean_env(),
            check=True,
            capture_output=True,
            timeout=300,
        )
        if then is not None:
            then(folder)

    return setup


P = {"module": "segexp.predict"}
OUT = "output={dir}/out.csv"
CASES = [
    # --- predict: the input
    case("predict-input-missing", f"input={{dir}}/nope.csv {OUT}", "nope.csv", "not found", **P),
    case("predict-input-folder", f"input={{dir}} {OUT}", "is a folder", **P),
    case(
        "predict-input-empty",
        f"input={{dir}}/e.csv {OUT}",
        "e.csv",
        "empty",
        setup=write("e.csv", ""),
        **P,
    ),
    case(
        "predict-input-header-only",
        f"input={{dir}}/h.csv {OUT}",
        "header but no rows",
        setup=write("h.csv", "CustomerID,Genre,Age\n"),
        **P,
    ),
    case(
        "predict-input-wrong-columns",
        f"input={{dir}}/w.csv {OUT}",
        "missing column",
        "spending_score",
        setup=promoted(write("w.csv", "id,colour\n1,red\n")),
        seeded=True,
        timeout=300,
        **P,
    ),
    case(
        "predict-bad-rows-without-rejects",
        f"input={{dir}}/b.csv {OUT}",
        "row 3",
        "empty row",
        "rejects=<file>",
        setup=promoted(
            write(
                "b.csv",
                "Genre,Age,Annual Income (k$),Spending Score (1-100)\n"
                "Male,20,30,40\n,,,\nFemale,22,-5,50\n",
            )
        ),
        seeded=True,
        timeout=300,
        **P,
    ),
    case("predict-no-input", OUT, "input", "got nothing", **P),
    case("predict-no-output", "input={mall}", "output", **P),
    # --- predict: the model
    case(
        "predict-unknown-model",
        f"input={{mall}} {OUT} model=models:/nobody@champion",
        "cannot load",
        "models:/nobody@champion",
        seeded=True,
        **P,
    ),
    case(
        "predict-run-id-does-not-exist",
        f"input={{mall}} {OUT} model=runs:/0123456789abcdef0123456789abcdef/model",
        "runs:/0123456789abcdef0123456789abcdef/model",
        seeded=True,
        **P,
    ),
    case("predict-no-champion", f"input={{mall}} {OUT}", "no champion yet", seeded=True, **P),
    # --- predict: the outputs
    case(
        "predict-output-exists",
        f"input={{mall}} {OUT}",
        "out.csv",
        "already exists",
        "overwrite=true",
        setup=write("out.csv", "x\n"),
        seeded=True,
        **P,
    ),
    case(
        "predict-rejects-exists",
        f"input={{mall}} {OUT} rejects={{dir}}/rej.csv",
        "rejects=",
        "rej.csv",
        "already exists",
        "overwrite=true",
        setup=write("rej.csv", "x\n"),
        seeded=True,
        **P,
    ),
    case("predict-output-is-input", "input={mall} output={mall}", "would overwrite the input", **P),
    case(
        "predict-rejects-is-output",
        f"input={{mall}} {OUT} rejects={{dir}}/out.csv",
        "rejects=",
        "output file",
        **P,
    ),
    case("predict-output-is-a-folder", "input={mall} output={dir}", "is a folder", **P),
    case(
        "predict-output-under-a-file",
        "input={mall} output={dir}/f.csv/out.csv",
        "is a file, not a folder",
        setup=write("f.csv", "x\n"),
        **P,
    ),
    case(
        "predict-output-unwritable",
        f"input={{mall}} output={UNWRITABLE}/out.csv",
        "cannot write in",
        UNWRITABLE.rsplit("/", 1)[0],
        **P,
    ),
    case(  # the new folder is made only when the file is written: a failure leaves none
        "predict-output-new-folder-not-left-behind",
        "input={dir}/nope.csv output={dir}/new/deeper/out.csv",
        "not found",
        **P,
    ),
    case(
        "predict-bad-escape-formulas",
        f"input={{mall}} {OUT} escape_formulas=maybe",
        "escape_formulas",
        "true or false",
        "maybe",
        **P,
    ),
    case(
        "predict-bad-overwrite",
        f"input={{mall}} {OUT} overwrite=sometimes",
        "overwrite",
        "true or false",
        "sometimes",
        **P,
    ),
    # --- report
    case(
        "report-output-exists",
        "run_id={run_id} output={dir}/r.html log_to_mlflow=false",
        "r.html",
        "already exists",
        "overwrite=true",
        setup=write("r.html", "<p>mine</p>"),
        seeded=True,
        module="segexp.report",
    ),
    case(
        "report-output-unwritable",
        f"run_id={{run_id}} output={UNWRITABLE}/r.html",
        "cannot write in",
        seeded=True,
        module="segexp.report",
    ),
    case(
        "report-output-is-a-folder",
        "run_id={run_id} output={dir}",
        "is a folder",
        seeded=True,
        module="segexp.report",
    ),
    case(
        "report-bad-overwrite",
        "run_id={run_id} output={dir}/r.html overwrite=perhaps",
        "overwrite",
        "true or false",
        seeded=True,
        module="segexp.report",
    ),
    # --- compare
    case(
        "compare-output-exists",
        "output={dir}/board.csv",
        "board.csv",
        "already exists",
        "overwrite=true",
        setup=write("board.csv", "mine\n"),
        seeded=True,
        module="segexp.compare",
    ),
    case(
        "compare-output-unwritable",
        f"output={UNWRITABLE}/board.csv",
        "cannot write in",
        seeded=True,
        module="segexp.compare",
    ),
    case(
        "compare-output-under-a-file",
        "output={dir}/f.csv/board.csv",
        "is a file, not a folder",
        setup=write("f.csv", "x\n"),
        seeded=True,
        module="segexp.compare",
    ),
]


# --- issue 22: the format from the user's name, only regular files replaced, no input column
# overwritten, the sample's file kept; each refusal within 15 s
FAST = {"timeout": 15}
CASES += [
    case(
        "predict-output-unsupported-suffix",
        "input={mall} output={dir}/out.xlsx",
        "output=",
        "unsupported file type (.xlsx)",
        ".csv, .tsv, .parquet, .pq",
        **P,
        **FAST,
    ),
    case(
        "predict-output-dev-null-overwrite",
        "input={mall} output=/dev/null overwrite=true",
        "/dev/null",
        "character device",
        "only regular files",
        **P,
        **FAST,
    ),
    case(
        "predict-output-dev-stdout-overwrite",
        "input={mall} output=/dev/stdout overwrite=true",
        "/dev/stdout",
        "symbolic link",
        **P,
        **FAST,
    ),
    case(
        "predict-output-fifo-overwrite",
        "input={mall} output={dir}/pipe.csv overwrite=true",
        "pipe.csv",
        "named pipe",
        setup=lambda folder: os.mkfifo(folder / "pipe.csv"),
        **P,
        **FAST,
    ),
    case(
        "predict-rejects-symlink-overwrite",
        f"input={{mall}} {OUT} rejects={{dir}}/link.csv overwrite=true",
        "rejects=",
        "symbolic link",
        setup=lambda folder: (folder / "link.csv").symlink_to("/dev/null"),
        **P,
        **FAST,
    ),
    case(
        "predict-input-has-segment-columns",
        f"input={{dir}}/scored.csv {OUT}",
        "already has the column(s) segment, segment_name",
        "which predict adds",
        "rename or drop",
        setup=write("scored.csv", "Genre,Age,segment,segment_name\nMale,20,3,Old name\n"),
        **P,
        **FAST,
    ),
    case(
        "predict-input-has-reason-column-with-rejects",
        f"input={{dir}}/r.csv {OUT} rejects={{dir}}/rej.csv",
        "already has the column(s) reason",
        setup=write("r.csv", "Genre,Age,reason\nMale,20,moved\n"),
        **P,
        **FAST,
    ),
    case(
        "sample-out-exists",
        "mall --out {dir}/s.csv",
        "--out=",
        "s.csv",
        "already exists",
        "--overwrite",
        setup=write("s.csv", "mine\n"),
        module="segexp.tools.sample",
        **FAST,
    ),
    case(
        "sample-out-dev-null-overwrite",
        "mall --out /dev/null --overwrite",
        "character device",
        module="segexp.tools.sample",
        **FAST,
    ),
    case(
        "sample-out-unsupported-suffix",
        "mall --out {dir}/s.json",
        "unsupported file type (.json)",
        ".parquet",
        module="segexp.tools.sample",
        **FAST,
    ),
    case(
        "compare-output-unsupported-suffix",
        "output={dir}/board.xlsx",
        "unsupported file type (.xlsx)",
        ".csv, .md, .markdown, .txt",
        seeded=True,
        module="segexp.compare",
        **FAST,
    ),
    case(
        "compare-output-format-disagrees-with-suffix",
        "output={dir}/board.csv format=markdown",
        "format=markdown",
        "csv file",
        ".md",
        seeded=True,
        module="segexp.compare",
        **FAST,
    ),
    case(
        "compare-output-dev-null-overwrite",
        "output=/dev/null overwrite=true",
        "character device",
        seeded=True,
        module="segexp.compare",
        **FAST,
    ),
    case(
        "report-output-not-html",
        "run_id={run_id} output={dir}/r.pdf log_to_mlflow=false",
        "unsupported file type (.pdf)",
        ".html, .htm",
        seeded=True,
        module="segexp.report",
        **FAST,
    ),
    case(
        "report-output-symlink-overwrite",
        "run_id={run_id} output={dir}/r.html overwrite=true log_to_mlflow=false",
        "symbolic link",
        setup=lambda folder: (folder / "r.html").symlink_to(folder / "mine.html"),
        seeded=True,
        module="segexp.report",
        **FAST,
    ),
]


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_bad_tool_input_is_one_line_error(battery, c):
    message = battery(c)
    assert "\n" not in message


def test_an_existing_output_is_left_untouched(battery, tmp_path):
    """The refused file keeps its bytes (the harness checks nothing new appeared)."""
    refused = case(
        "compare-output-kept",
        "output={dir}/board.md",
        "already exists",
        setup=write("board.md", "mine\n"),
        seeded=True,
        module="segexp.compare",
    )
    battery(refused)
    assert (tmp_path / "work" / "board.md").read_text() == "mine\n"


def test_dev_null_and_links_stay_what_they_were(battery, tmp_path):
    """overwrite=true refused on /dev/null: it is still the same character device."""
    before = os.stat("/dev/null")
    battery(next(c for c in CASES if c.id == "predict-output-dev-null-overwrite"))
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert os.path.islink("/dev/stdout")


def test_a_link_to_a_file_stays_a_link(battery, tmp_path):
    """overwrite=true on a symbolic link to a file: refused; link and file as they were."""
    work = tmp_path / "work"
    linked = case(
        "predict-output-link-to-a-file-overwrite",
        "input={mall} output={dir}/link.csv overwrite=true",
        "symbolic link",
        setup=lambda folder: (
            (folder / "target.csv").write_text("mine\n"),
            (folder / "link.csv").symlink_to(folder / "target.csv"),
        ),
        timeout=15,
        **P,
    )
    battery(linked)
    assert (work / "link.csv").is_symlink()
    assert os.readlink(work / "link.csv") == str(work / "target.csv")
    assert (work / "target.csv").read_text() == "mine\n"


def test_sample_out_existing_file_keeps_its_bytes(battery, tmp_path):
    battery(next(c for c in CASES if c.id == "sample-out-exists"))
    assert (tmp_path / "work" / "s.csv").read_text() == "mine\n"


def test_input_segment_columns_are_not_lost(battery, tmp_path):
    """An input holding segment/segment_name is refused: no output, the input unchanged."""
    battery(next(c for c in CASES if c.id == "predict-input-has-segment-columns"))
    work = tmp_path / "work"
    assert (
        work / "scored.csv"
    ).read_text() == "Genre,Age,segment,segment_name\nMale,20,3,Old name\n"
    assert not (work / "out.csv").exists()


@pytest.fixture(scope="module")
def champion_store(tmp_path_factory, request) -> Path:
    """A copy of the seeded store whose best run is promoted to champion."""
    import shutil

    seed_folder, _, _ = request.getfixturevalue("seeded_store")
    folder = tmp_path_factory.mktemp("champion")
    shutil.copy(seed_folder / STORE_FILE, folder / STORE_FILE)
    promoted()(folder)
    return folder


def _predict(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "segexp.predict",
            f"mlflow.tracking_uri=sqlite:///{folder / STORE_FILE}",
            *args,
        ],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_writes_the_format_of_the_output_name(champion_store, tmp_path):
    """output=out.parquet is Parquet and output=segments.tsv tab-separated (the format used
    to come from the staged .tmp name: CSV text in both), with the same rows as out.csv."""
    import pyarrow.parquet as pq

    source = tmp_path / "customers.csv"
    source.write_text(
        "CustomerID,Genre,Age,Annual Income (k$),Spending Score (1-100)\n"
        "0001,Male,19,15,39\n0002,Female,35,80,90\n0003,Female,60,120,10\n"
    )
    outputs = {name: tmp_path / name for name in ("out.csv", "out.parquet", "segments.tsv")}
    for path in outputs.values():
        done = _predict(champion_store, f"input={source}", f"output={path}")
        assert done.returncode == 0, done.stderr[-3000:]
    expected = pd.read_csv(outputs["out.csv"], dtype=str, keep_default_na=False)
    assert list(expected.columns[-2:]) == ["segment", "segment_name"]
    assert expected["CustomerID"].tolist() == ["0001", "0002", "0003"]
    assert outputs["out.parquet"].read_bytes()[:4] == b"PAR1"
    table = pq.read_table(outputs["out.parquet"])
    assert table.column_names == list(expected.columns)
    assert table.column("CustomerID").to_pylist() == ["0001", "0002", "0003"]
    assert [str(v) for v in table.column("segment").to_pylist()] == expected["segment"].tolist()
    assert table.column("segment_name").to_pylist() == expected["segment_name"].tolist()
    lines = outputs["segments.tsv"].read_text().splitlines()
    assert lines[0].split("\t") == list(expected.columns) and "," not in lines[0]
    tsv = pd.read_csv(outputs["segments.tsv"], sep="\t", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(tsv, expected)


def test_compare_csv_escapes_run_names_that_start_like_formulas(seeded_store, tmp_path):
    """Run names beginning with = are written '=...; numbers (-3.5 style) stay numbers."""
    import csv
    import shutil

    from mlflow.tracking import MlflowClient

    seed_folder, run_id, _ = seeded_store
    shutil.copy(seed_folder / STORE_FILE, tmp_path / STORE_FILE)
    store = f"sqlite:///{tmp_path / STORE_FILE}"
    payload = '=HYPERLINK("http://x","y")'
    MlflowClient(store).set_tag(run_id, "mlflow.runName", payload)
    target = tmp_path / "lb.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "segexp.compare",
            f"mlflow.tracking_uri={store}",
            f"output={target}",
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with target.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [row["run_name"] for row in rows]
    assert "'" + payload in names and payload not in names
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row.values())
    assert all(float(row["silhouette"]) <= 1 for row in rows)  # numbers are written as numbers
    stdout = subprocess.run(
        [sys.executable, "-m", "segexp.compare", f"mlflow.tracking_uri={store}", "format=csv"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert stdout.returncode == 0 and f"'{payload}".replace('"', '""') in stdout.stdout
