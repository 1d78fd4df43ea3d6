import pytest

from segexp.errors import RangeSyntaxError
from segexp.jobs.ranges import expand_argv, expand_override


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("k=3..8", "k=3,4,5,6,7,8"),
        ("k=2..10:2", "k=2,4,6,8,10"),
        ("k=3..3", "k=3"),
        ("algo.min_samples=3..5", "algo.min_samples=3,4,5"),
        ("+extra=1..3", "+extra=1,2,3"),
        ("k=2..4,9", "k=2,3,4,9"),
        ("k=-1..1", "k=-1,0,1"),
    ],
)
def test_expand_override_ranges(arg, expected):
    assert expand_override(arg) == expected


@pytest.mark.parametrize(
    "arg",
    [
        "k=range(3,9)",
        "k=3,5,7",
        "hydra/launcher=joblib",
        "data.path=../shared/data/Mall_Customers.csv",
        "data.path=..",
        "-m",
        "--multirun",
        "algo=kmeans,gmm",
        "k='3..8'",
        "algo.eps=0.3,0.4",
    ],
)
def test_expand_override_passes_other_syntax_through(arg):
    assert expand_override(arg) == arg


@pytest.mark.parametrize(
    ("arg", "fragment"),
    [
        ("k=8..3", "runs backwards"),
        ("k=a..b", "inclusive integer ranges"),
        ("k=3..", "inclusive integer ranges"),
        ("k=..5", "inclusive integer ranges"),
        ("k=1..5:0", "STEP must be a positive integer"),
        ("algo.eps=0.1..0.5", "inclusive integer ranges"),
    ],
)
def test_malformed_range_is_one_line_error(arg, fragment):
    with pytest.raises(RangeSyntaxError) as info:
        expand_override(arg)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert arg.split("=")[0] in message


def test_expand_argv_only_touches_ranges():
    argv = ["-m", "algo=kmeans,gmm", "k=3..5", "hydra/launcher=joblib"]
    assert expand_argv(argv) == ["-m", "algo=kmeans,gmm", "k=3,4,5", "hydra/launcher=joblib"]
