"""Battery, second round (issue 22): sweeps too large to list, a config that removes a
group or names an unset variable, unwritable output folders, code tags in the user's own
config, sweep ids that would break MLflow's filter, Databricks without a workspace, and
faults around the store: a lock held by another process, a server whose API hangs, a
server that redirects elsewhere, the store file deleted mid-sweep.

Each refusal is one ``segexp: error:`` line, its exit code, nothing left behind
(``harness.check``), within ``BOUND_S``; the fault tests time it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segexp.errors import TrackingError
from segexp.tracking.store import LOCK_GRACE, store_lock
from tests.battery import faults
from tests.battery.harness import case, clean_env

BOUND_S = 15.0  # every refusal answers within this (process start-up included)
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NO_VAR = "SEGEXP_BATTERY_UNSET"  # harness.clean_env drops every SEGEXP_* variable
EVIL = (  # would write owned.txt in the case's folder if YAML ran it
    "_target_: sklearn.cluster.KMeans\n"
    'n_clusters: !!python/object/apply:os.system ["touch owned.txt"]\n'
)
CODE_TAG = ("line 2", "!!python/object/apply:os.system", "not allowed", "nothing was run")


def _evil_algo(folder: Path) -> None:
    (folder / "conf" / "algo").mkdir(parents=True)
    (folder / "conf" / "algo" / "evil.yaml").write_text(EVIL)


def _evil_store_config(folder: Path) -> None:
    """The tools' own configs compose conf/mlflow/local.yaml: the user's copy of it."""
    (folder / "conf" / "mlflow").mkdir(parents=True)
    (folder / "conf" / "mlflow" / "local.yaml").write_text(EVIL)


def _evil_main_config(folder: Path) -> None:
    (folder / "conf").mkdir()
    (folder / "conf" / "config.yaml").write_text(EVIL)


EVIL_ALGO = ("conf", "conf/algo", "conf/algo/evil.yaml")

CASES = [
    # a range's job count comes from its bounds, before any list is built
    case("range-huge", "-m k=1..999999999999", "limits.max_jobs", "999999999999 jobs"),
    case("hydra-range-huge", "-m k=range(1,999999999999)", "limits.max_jobs", "999999999998"),
    case("hydra-shuffle-huge", "-m k=shuffle(range(1,999999999999))", "limits.max_jobs"),
    case("hydra-float-range-huge", "-m k=range(1,999999999,0.5)", "limits.max_jobs"),
    case("hydra-range-step-0", "-m k=range(1,9,0)", "k=range(1,9,0)", "step must not be 0"),
    # a group removed, a variable not set
    case("remove-mlflow", "~mlflow", "mlflow:", "~mlflow", "needs this config group", "local"),
    case("sweep-remove-mlflow", "-m k=3,4 ~mlflow", "mlflow:", "~mlflow", "local"),
    case("remove-data", "~data", "data:", "~data", "mall_sample"),
    case(
        "env-unset",
        ["data.path=${oc.env:" + NO_VAR + "}"],
        "data.path",
        NO_VAR,
        "not found",
        "${oc.env:" + NO_VAR + ",<default>}",
    ),
    case("sweep-env-unset", ["-m", "k=3,4", "data.path=${oc.env:" + NO_VAR + "}"], NO_VAR),
    case("store-env-unset", ["mlflow.tracking_uri=${oc.env:" + NO_VAR + "}"], NO_VAR),
    case(
        "compare-env-unset",
        ["mlflow.tracking_uri=${oc.env:" + NO_VAR + "}"],
        "mlflow.tracking_uri",
        NO_VAR,
        module="segexp.compare",
    ),
    case(
        "eda-env-unset",
        ["data.path=${oc.env:" + NO_VAR + "}"],
        "data.path",
        NO_VAR,
        module="segexp.eda",
    ),
    case("key-missing", ["data.path=${no_such_key}"], "data.path", "no_such_key", "not found"),
    # a tag that would run code in the user's own conf/: refused, never run
    case(
        "code-tag-algo",
        "algo=evil",
        "conf/algo/evil.yaml",
        *CODE_TAG,
        setup=_evil_algo,
        allowed=EVIL_ALGO,
    ),
    case(
        "sweep-code-tag-algo",
        "-m algo=kmeans,evil",
        "conf/algo/evil.yaml",
        *CODE_TAG,
        setup=_evil_algo,
        allowed=EVIL_ALGO,
    ),
    case(
        "code-tag-config",
        "k=3",
        "conf/config.yaml",
        *CODE_TAG,
        setup=_evil_main_config,
        allowed=("conf", "conf/config.yaml"),
    ),
    case(
        "sweep-code-tag-config",
        "-m k=3,4",
        "conf/config.yaml",
        *CODE_TAG,
        setup=_evil_main_config,
        allowed=("conf", "conf/config.yaml"),
    ),
    case(
        "compare-code-tag",
        "mlflow.tracking_uri={store}",
        "conf/mlflow/local.yaml",
        *CODE_TAG,
        module="segexp.compare",
        setup=_evil_store_config,
        allowed=("conf", "conf/mlflow", "conf/mlflow/local.yaml"),
    ),
    # sweep ids go into MLflow's filter (no escapes there): refused with the ids that exist
    case(
        "compare-quote-in-sweep-id",
        ["sweep_id=\"x' or '1'='1\"", "mlflow.tracking_uri={store}"],
        "sweep_id=x' or '1'='1",
        "not a sweep id",
        "latest sweeps here",
        module="segexp.compare",
        seeded=True,
    ),
    case(
        "promote-quote-in-sweep-id",
        ["best=silhouette", "sweep_id='a\"b'", "mlflow.tracking_uri={store}"],
        'sweep_id=a"b',
        "not a sweep id",
        module="segexp.promote",
        seeded=True,
    ),
    # MLflow's databricks scheme, on a machine with no workspace
    case(
        "databricks",
        "mlflow.tracking_uri=databricks",
        "mlflow.tracking_uri=databricks",
        "DATABRICKS_HOST",
        env={"DATABRICKS_CONFIG_FILE": "{dir}/no.databrickscfg"},
    ),
    case(
        "compare-databricks",
        "mlflow.tracking_uri=databricks",
        "DATABRICKS_HOST",
        module="segexp.compare",
        env={"DATABRICKS_CONFIG_FILE": "{dir}/no.databrickscfg"},
    ),
    case(
        "databricks-host-unreachable",
        "mlflow.tracking_uri=databricks",
        "DATABRICKS_HOST=https://127.0.0.1:1",
        "does not answer",
        env={"DATABRICKS_HOST": "https://127.0.0.1:1", "DATABRICKS_TOKEN": "x"},
    ),
]


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_second_battery_is_one_line_error(battery, c):
    battery(c)


_MEASURE = """
import resource, subprocess, sys, time
started = time.monotonic()
command = [sys.executable, "-m", "segexp", *sys.argv[1:]]
done = subprocess.run(command, capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(done.stderr)
print(time.monotonic() - started, peak // 1024, done.returncode)
"""


def _peak(args: list[str], cwd: Path) -> tuple[float, int, str]:
    """(seconds, peak memory in MB, stderr) of ``python -m segexp ARGS``, measured by a
    small launcher (a child forked from pytest would count pytest's own memory)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds, peak_mb, code = done.stdout.split()
    assert code == "2", done.stderr
    return float(seconds), int(peak_mb), done.stderr


@pytest.mark.parametrize(
    ("sweep", "seconds_max", "mb_max"),
    [("k=1..999999999999", 5, 120), ("k=range(1,999999999999)", BOUND_S, 400)],
    ids=["shorthand", "hydra-range"],
)
def test_huge_range_is_refused_from_its_bounds(tmp_path, sweep, seconds_max, mb_max):
    """Counted from its bounds, never listed: the shorthand before Hydra parses it (the
    memory of a bare interpreter), Hydra's range() by the sweep's callback (the memory of
    the loaded modules, about 250 MB; 10**12 values would never fit, and counting them one
    by one ran past 60 s)."""
    seconds, peak_mb, stderr = _peak(["-m", sweep], tmp_path)
    print(f"{sweep}: {seconds:.2f} s, {peak_mb} MB")
    assert "limits.max_jobs" in stderr and "Traceback" not in stderr
    assert seconds < seconds_max and peak_mb < mb_max, (seconds, peak_mb)


# ------------------------------------------------------------ unwritable folders


def _immutable(folder: Path) -> None:
    """A folder nobody, root included, can write in: ``chattr +i`` as root, else 0o555."""
    folder.mkdir()
    if not ROOT:
        folder.chmod(0o555)
        return
    if shutil.which("chattr") is None:
        pytest.skip("root, and no chattr to make a folder read-only")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i refused here: {done.stderr!r}")


def _writable_again(folder: Path) -> None:
    if ROOT and shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    if folder.exists():
        folder.chmod(0o755)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        ("-m k=3,4 hydra.sweep.dir=locked/sweep", ("hydra.sweep.dir=locked/sweep", "locked")),
        ("-m k=3,4 hydra.sweep.dir=locked", ("hydra.sweep.dir=locked", "not writable")),
        ("hydra.run.dir=locked/run", ("locked/run", "hydra.run.dir")),
    ],
    ids=["sweep-dir-under-read-only", "sweep-dir-read-only", "run-dir-under-read-only"],
)
def test_read_only_output_folder_is_one_line(battery, tmp_path, args, expect):
    locked = tmp_path / "work" / "locked"

    def setup(folder: Path) -> None:
        _immutable(folder / "locked")

    try:
        battery(case("read-only", args, *expect, setup=setup, allowed=("locked",)))
    finally:
        _writable_again(locked)


# ------------------------------------------------------------ faults around the store


def _timed(battery, c) -> float:
    started = time.monotonic()
    message = battery(c)
    seconds = time.monotonic() - started
    print(f"{c.id}: {seconds:.1f} s: {message}")
    assert seconds < BOUND_S, f"{c.id} took {seconds:.1f} s"
    return seconds


@pytest.mark.parametrize("module", ["segexp", "segexp.compare"])
def test_server_whose_api_hangs_is_refused_within_bound(battery, module):
    """/health answers OK at once; the API never answers. MLflow's own retries took 66 s."""
    with faults.http_server(faults.health_only) as (url, asked):
        words = (f"mlflow.tracking_uri={url}", "answers /health but its API", "no answer")
        _timed(
            battery,
            case(f"api-hangs-{module}", f"mlflow.tracking_uri={url}", *words, module=module),
        )
    assert asked[:2] == ["/health", "/api/2.0/mlflow/experiments/search?max_results=1"]


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_redirect_to_another_server_is_refused(battery, sweep):
    """A 307 to another port: that server gets nothing unless the user allows redirects."""
    with (
        faults.http_server(faults.record_only) as (elsewhere, reached),
        faults.http_server(faults.redirect_to(elsewhere)) as (url, _),
    ):
        words = ("307", "redirect to another server", elsewhere, "SEGEXP_ALLOW_REDIRECTS=true")
        args = f"{'-m k=3,4 ' if sweep else ''}mlflow.tracking_uri={url}"
        _timed(battery, case("redirect", args, *words))
    assert reached == [], "the other server was asked"


def test_allowed_redirect_is_followed(tmp_path):
    """With SEGEXP_ALLOW_REDIRECTS=true the check lets MLflow follow it (here to a server
    that is no MLflow, which MLflow then refuses in its own words)."""
    with (
        faults.http_server(faults.record_only) as (elsewhere, reached),
        faults.http_server(faults.redirect_to(elsewhere)) as (url, _),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "segexp.compare", f"mlflow.tracking_uri={url}"],
            cwd=tmp_path,
            env=clean_env({"SEGEXP_ALLOW_REDIRECTS": "true"}),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "redirect to another server" not in result.stderr
    assert reached, "the redirect was not followed"


def _watch(args: list[str], cwd: Path, env: dict[str, str], until: str | None = None):
    """Run ``python -m segexp ARGS``; (stderr lines with their second since start, exit
    code, seconds). ``until``: stop the command once a line holds it (code None)."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "segexp", *args],
        cwd=cwd,
        env=clean_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    lines: list[tuple[float, str]] = []
    for line in child.stderr:
        lines.append((time.monotonic() - started, line.rstrip("\n")))
        if until is not None and until in line:
            child.kill()
            child.wait()
            return lines, None, time.monotonic() - started
    code = child.wait(timeout=120)
    return lines, code, time.monotonic() - started


def test_held_store_lock_is_said_at_once_and_waited_for_within_bound(tmp_path):
    """Another process holds the store's lock (as one creating the store does): the
    command says so at once with its pid, waits SEGEXP_STORE_LOCK_TIMEOUT seconds, then
    refuses in one line, exit 2. MLflow's store is neither created nor touched."""
    bound = 4.0
    with faults.lock_held(tmp_path / "mlflow.db.lock") as pid:
        env = {"SEGEXP_STORE_LOCK_TIMEOUT": str(bound)}
        lines, code, seconds = _watch(["k=3"], tmp_path, env)
    said = [(t, line) for t, line in lines if f"is locked by pid {pid}" in line]
    errors = [line for _, line in lines if line.startswith("segexp: error:")]
    print(f"said at {said[0][0] if said else None:.1f} s, exit {code} at {seconds:.1f} s")
    assert code == 2 and len(said) == 1 and len(errors) == 1, lines
    assert "Traceback" not in "\n".join(line for _, line in lines)
    assert f"held by pid {pid} after {bound:g} s" in errors[0]
    assert "SEGEXP_STORE_LOCK_TIMEOUT" in errors[0]
    # said before the wait, not after it: the wait is the bound, and only the bound
    waited = seconds - said[0][0]
    assert bound - 0.5 <= waited <= bound + 2.0, waited
    assert seconds < BOUND_S + bound
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db.lock"]


def test_held_store_lock_default_bound_is_said(tmp_path):
    """Without the variable the documented 30 s bound is said (the test stops there)."""
    with faults.lock_held(tmp_path / "mlflow.db.lock") as pid:
        lines, _, _ = _watch(["-m", "k=3,4"], tmp_path, {}, until="is locked by pid")
    assert f"is locked by pid {pid}" in lines[-1][1]
    assert "waiting up to 30 s (SEGEXP_STORE_LOCK_TIMEOUT)" in lines[-1][1]


@pytest.mark.parametrize("same_command", [False, True], ids=["another-command", "sibling-worker"])
def test_a_lock_of_another_command_is_said_at_once_a_siblings_after_the_grace(
    tmp_path, capsys, monkeypatch, same_command
):
    """Held by another command: said at once and refused after the bound alone; held by a
    worker of this command (its process group: joblib's workers), first LOCK_GRACE in silence."""
    monkeypatch.setenv("SEGEXP_STORE_LOCK_TIMEOUT", "1")
    db = tmp_path / "mlflow.db"
    with faults.lock_held(Path(f"{db}.lock"), same_command=same_command) as pid:
        started = time.monotonic()
        refused = pytest.raises(TrackingError, match=f"held by pid {pid} after 1 s")
        with refused, store_lock(db, "sqlite:///mlflow.db"):
            pass
        waited = time.monotonic() - started
    assert f"is locked by pid {pid}" in capsys.readouterr().err
    assert (waited >= LOCK_GRACE) is same_command, waited


def test_store_deleted_mid_sweep_ends_in_one_line(tmp_path):
    """The store file deleted after the first job's line: the sweep stops, exit 1, one
    line saying the file was deleted and what it held, no traceback."""
    child = subprocess.Popen(
        [sys.executable, "-m", "segexp", "-m", "k=2..6", "plots.enabled=false"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if "#0 " in line:  # the first job's line: its run is in the store
            for path in tmp_path.glob("mlflow.db*"):
                if not path.name.endswith(".lock"):
                    path.unlink()
            break
    _, stderr = child.communicate(timeout=300)
    errors = [line for line in stderr.splitlines() if line.startswith("segexp: error:")]
    assert child.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr and len(errors) == 1, stderr[-3000:]
    assert "was deleted during the sweep" in errors[0] and "run the sweep again" in errors[0]
