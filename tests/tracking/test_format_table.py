"""format_table's contract, which segexp-compare's column fitting relies on: a header, a rule
and one line per row; within ``max_width`` the widest text columns are cut with an ellipsis
(never below 10 characters), numbers never; store text is printed as it is (no rich markup)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segexp.tracking.leaderboard import format_table, printed_width


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": pd.array([1, 2, None], "Int64"),
            "run_name": ["kmeans-k3-standard-income_spending", "gmm-k4", "[red]x[/red] :smile:"],
            "silhouette": [0.5512345, 0.4, float("nan")],
            "calinski_harabasz": [123456.7, 98.5, 1.0],
            "run_id": ["0123456789abcdef0123456789abcdef"] * 3,
        }
    )


def test_full_table_is_header_rule_and_rows_with_every_value():
    lines = format_table(_frame()).splitlines()
    assert len(lines) == 2 + 3
    assert lines[0].split() == ["rank", "run_name", "silhouette", "calinski_harabasz", "run_id"]
    assert set(lines[1]) <= {"─", "-", " "}
    assert "kmeans-k3-standard-income_spending" in lines[2] and "0.5512" in lines[2]
    assert "123500" in lines[2] and "1.235e+05" not in lines[2]  # no exponent below 1e9
    assert "[red]x[/red] :smile:" in lines[4]  # store text is not read as markup
    assert lines[3].index("0.4") + 3 == lines[2].index("0.5512") + 6  # numbers right-aligned
    assert all(line == line.rstrip() for line in lines)


def test_narrow_table_cuts_text_columns_never_numbers():
    full = format_table(_frame())
    widest = max(map(len, full.splitlines()))
    narrow = format_table(_frame(), max_width=widest - 30).splitlines()
    assert max(map(len, narrow)) <= widest - 30
    assert "\u2026" in narrow[2] and "0.5512" in narrow[2] and "123500" in narrow[2]
    # far too narrow: text columns stop at 10 characters, numbers stay whole
    tiny = format_table(_frame(), max_width=20).splitlines()
    assert "kmeans-k3\u2026" in tiny[2] and "123500" in tiny[2] and "0.5512" in tiny[2]


def test_printed_width_is_the_widest_printed_line():
    """compare hides columns until the table fits, measuring with printed_width (no drawing)."""
    rng = np.random.default_rng(3)
    frames = [
        pd.DataFrame({"rank": [], "run_name": []}),
        pd.DataFrame(
            {
                "rank": np.arange(1, 41),
                "run_name": ["kmeans-k" + "x" * int(n) for n in rng.integers(0, 60, 40)],
                "silhouette": rng.normal(0, 1e5, 40),
                "stability": np.where(rng.random(40) < 0.3, np.nan, rng.random(40)),
                "n_clusters": rng.integers(2, 12, 40),
            }
        ),
    ]
    for frame in frames:
        widest = max(map(len, format_table(frame).splitlines()), default=0)
        assert printed_width(frame) == widest
