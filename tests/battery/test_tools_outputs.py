"""Battery: predict's input and every tool's output file (predict, report, compare).

Each case is one command a careless user types; the harness asserts one
``segexp: error:`` line, exit 2, the words of the message and that no run and
no file is left behind (an output refused is not touched; a folder that would
have been created for it is not created).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
