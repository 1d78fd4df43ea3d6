"""The HTML report: built from a real MLflow run, self-contained, opened in a real browser."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CONF_DIR, compose_config, run_cli
from hydra import compose, initialize_config_dir
from matplotlib.image import imread
from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from segexp.data.export import write_table
from segexp.data.samples import generate_mall_sample
from segexp.errors import ConfigError, TrackingError
from segexp.insight.profiles import compute_profile
from segexp.insight.report import SECTIONS
from segexp.jobs.job import run_job
from segexp.jobs.outcomes import SweepContext
from segexp.jobs.summary import finish_sweep
from segexp.tools import report as report_module
from segexp.tools.promote import promote
from segexp.tools.report import collect_report_data, report_from_config, write_report
from segexp.tracking.assignments import download_assignments
from segexp.tracking.store import Tracker

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FEATURES = ["annual_income", "spending_score"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class _Page(HTMLParser):
    """Sections, headings, image sources, links and visible text of a report."""

    def __init__(self) -> None:
        super().__init__()
        self.section_ids: list[str] = []
        self.h2: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self._in_h2 = False
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section_ids.append(attrs.get("id", ""))
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("style", "script"):
            self._skip += 1
        for key in ("src", "href"):
            if attrs.get(key):
                self.urls.append(attrs[key])

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        if tag in ("style", "script"):
            self._skip -= 1

    def text_joined(self) -> str:
        return " ".join(" ".join(self.text).split())

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data
        if not self._skip:
            self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _fresh_store(folder: Path, template: Path) -> str:
    db = folder / "mlflow.db"
    shutil.copy(template, db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, _template_store) -> tuple[str, str]:
    """One real segmentation run (k=5 on the built-in sample) shared by the report tests."""
    store = _fresh_store(tmp_path_factory.mktemp("report-run"), _template_store)
    outcome = run_job(compose_config(["mlflow.tracking_uri=" + store]))
    assert outcome.status == "finished", outcome.message
    return store, outcome.run_id


def _run_segment_names(store: str, run_id: str, folder: Path) -> dict[int, str]:
    client = MlflowClient(tracking_uri=store)
    path = client.download_artifacts(run_id, "segments.json", str(folder))
    return {int(s["id"]): s["name"] for s in json.loads(Path(path).read_text())["segments"]}


def _expected_names(store: str, run_id: str, folder: Path) -> dict[int, str]:
    """The run's own segment names; for a run without segments.json, its assignments named."""
    client = MlflowClient(tracking_uri=store)
    if "segments.json" in {a.path for a in client.list_artifacts(run_id)}:
        return _run_segment_names(store, run_id, folder)
    path = client.download_artifacts(run_id, "assignments.csv", str(folder))
    assignments = pd.read_csv(path)
    profile = compute_profile(assignments, assignments.pop("segment").to_numpy(), FEATURES)
    return {s: n.name for s, n in profile.names.items()}


def _manual_run(
    store: str,
    tmp_path: Path,
    *,
    status: str = "FINISHED",
    tags: dict | None = None,
    params: dict | None = None,
    files: dict[str, str] | None = None,
    name: str = "manual",
    parent: str | None = None,
) -> str:
    """A run written directly through MlflowClient, for runs segexp itself would not make."""
    tracker = Tracker(store)
    experiment_id = tracker.experiment_id("report-tests")
    run_id = tracker.start_run(experiment_id, name, tags or {}, parent_run_id=parent)
    client = tracker.client
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in (params or {}).items()])
    staged = tmp_path / f"staged-{run_id}"
    staged.mkdir()
    for name, content in (files or {}).items():
        (staged / name).write_text(content)
    if files:
        client.log_artifacts(run_id, str(staged))
    client.set_terminated(run_id, status)
    return run_id


def test_run_logs_profile_names_and_actions(real_run, tmp_path):
    """Every run carries its profile (segexp.insight.profiles.write_profile_files)."""
    store, run_id = real_run
    client = MlflowClient(tracking_uri=store)
    root = {a.path for a in client.list_artifacts(run_id)}
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"profile.csv", "profile.md", "segments.json"} <= root
    assert {"plots/profile_heatmap.png", "plots/snake.png"} <= plots
    names = _run_segment_names(store, run_id, tmp_path)
    assert sorted(names.values()) == sorted(
        [
            "Affluent big spenders",
            "Average customers",
            "Careful high earners",
            "Frugal low earners",
            "Young big spenders",
        ]
    )


def test_report_is_self_contained_and_complete(real_run, tmp_path):
    store, run_id = real_run
    output = write_report(store, run_id, tmp_path / "nested" / "report.html").path
    assert output == (tmp_path / "nested" / "report.html").resolve()
    page = _parse(output)
    text = " ".join(" ".join(page.text).split())

    assert page.section_ids == list(SECTIONS)
    assert [h.strip() for h in page.h2] == list(SECTIONS.values())
    for name in _expected_names(store, run_id, tmp_path).values():
        assert name in text
    run = MlflowClient(tracking_uri=store).get_run(run_id)
    assert run_id in text
    assert run.data.tags["segexp.data_fingerprint"] in text
    assert "not part of a sweep" in text
    assert "Suggested actions" in text

    # Images are embedded PNGs (scatter, heatmap, snake) and nothing points outside the file.
    assert len(page.images) == 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(PNG_SIGNATURE)
        assert imread(io.BytesIO(png)).shape[1] > 200
    external = [u for u in page.urls if not u.startswith(("data:", "#"))]
    assert external == []
    assert "@media print" in output.read_text()

    client = MlflowClient(tracking_uri=store)
    assert "report/report.html" in {a.path for a in client.list_artifacts(run_id, "report")}
    logged = client.download_artifacts(run_id, "report/report.html", str(tmp_path / "dl"))
    assert Path(logged).read_bytes() == output.read_bytes()


def test_report_profiles_a_run_logged_without_segments_json(store, tmp_path):
    sample = generate_mall_sample()
    assignments = sample[["customer_id", *FEATURES]].copy()
    assignments["segment"] = pd.factorize(sample["true_segment"], sort=True)[0]
    run_id = _manual_run(
        store,
        tmp_path,
        tags={"segexp.kind": "job", "segexp.data_fingerprint": "feedbeef12345678"},
        params={"feature_columns": ",".join(FEATURES), "algo": "kmeans", "k": 5},
        files={"assignments.csv": assignments.to_csv(index=False)},
    )
    output = write_report(store, run_id, tmp_path / "r.html", log_to_mlflow=False).path
    text = " ".join(" ".join(_parse(output).text).split())
    assert "profiled and named when this report was made" in text
    assert "feedbeef12345678" in text
    for name in ("Careful high earners", "Affluent big spenders", "Frugal low earners"):
        assert name in text
    assert MlflowClient(tracking_uri=store).list_artifacts(run_id, "report") == []


def test_report_reads_formula_escaped_ids_back_as_the_job_wrote_them(store, tmp_path, monkeypatch):
    """assignments.csv escapes ids such as '=SUM(1)'; the report reads them unescaped."""
    sample = generate_mall_sample()
    assignments = sample[["customer_id", *FEATURES]].copy()
    assignments["customer_id"] = "=" + assignments["customer_id"].astype(str)
    assignments["segment"] = pd.factorize(sample["true_segment"], sort=True)[0]
    escaped = tmp_path / "assignments.csv"
    write_table(assignments, escaped, "csv")
    assert escaped.read_text().splitlines()[1].startswith("'=")
    run_id = _manual_run(
        store,
        tmp_path,
        tags={"segexp.kind": "job"},
        params={"feature_columns": ",".join(FEATURES)},
        files={"assignments.csv": escaped.read_text()},
    )
    read: list[pd.DataFrame] = []

    def spy(*args, **kwargs):
        read.append(download_assignments(*args, **kwargs))
        return read[-1].copy()

    monkeypatch.setattr(report_module, "download_assignments", spy)
    output = write_report(store, run_id, tmp_path / "r.html", log_to_mlflow=False).path
    assert "profiled and named when this report was made" in output.read_text()
    assert read[0]["customer_id"].tolist() == assignments["customer_id"].tolist()


def test_report_errors_are_one_line_and_say_what_to_do(store, tmp_path):
    with pytest.raises(TrackingError) as info:
        write_report(store, "0123456789abcdef", tmp_path / "r.html")
    assert "run_id=0123456789abcdef: no run '0123456789abcdef'" in str(info.value)
    assert "mlflow.tracking_uri" in str(info.value)

    parent = _manual_run(
        store,
        tmp_path,
        tags={"segexp.kind": "sweep", "segexp.sweep_id": "s1", "segexp.best_run_id": "abc"},
    )
    with pytest.raises(TrackingError) as info:
        write_report(store, parent, tmp_path / "r.html")
    assert "parent run of sweep s1, which has no job runs to report" in str(info.value)

    failed = _manual_run(
        store, tmp_path, status="FAILED", tags={"segexp.error": "ValueError: boom\ntrace"}
    )
    with pytest.raises(TrackingError) as info:
        write_report(store, failed, tmp_path / "r.html")
    assert "ended FAILED (ValueError: boom)" in str(info.value)
    assert "\n" not in str(info.value)

    empty = _manual_run(store, tmp_path, tags={"segexp.kind": "job"})
    with pytest.raises(TrackingError, match="neither segments.json nor assignments.csv"):
        write_report(store, empty, tmp_path / "r.html")


def test_report_output_that_cannot_be_written_is_a_config_error(real_run, tmp_path):
    store, run_id = real_run
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as info:
        write_report(store, run_id, blocker / "report.html", log_to_mlflow=False)
    assert f"output={blocker / 'report.html'}: cannot write the report there" in str(info.value)


def test_report_cli_without_run_id_and_no_champion_exits_2_with_the_hint(tmp_path, store):
    hint = "segexp: error: no champion yet: run segexp-promote best=silhouette (or pass run_id=...)"
    for uri in (f"sqlite:///{tmp_path}/m.db", store):  # no store at all; a store, no champion
        result = run_cli([f"mlflow.tracking_uri={uri}"], tmp_path, module="segexp.report")
        assert result.returncode == 2
        assert result.stderr.startswith(hint) and result.stderr.count("\n") == 1
        assert "models:/customer-segments@champion is not in" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "m.db").exists() and not list(tmp_path.glob("*.html"))


def _tool_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


def test_report_without_run_id_reports_the_champion(store, tmp_path):
    fast = [f"mlflow.tracking_uri={store}", "plots.enabled=false"]
    champion = run_job(compose_config([*fast, "k=5"])).run_id
    other = run_job(compose_config([*fast, "k=4"])).run_id
    promote(_tool_config("promote", [*fast[:1], f"run_id={champion}", "report.enabled=false"]))
    output = tmp_path / "champion.html"
    written = report_from_config(_tool_config("report", [*fast[:1], f"output={output}"]))
    assert written.run_id == champion != other
    assert "This run is the champion: models:/customer-segments@champion (version 1)" in (
        written.summary()
    )
    text = " ".join(" ".join(_parse(output).text).split())
    assert f"run {champion}" in text or champion in text
    assert "This run is the champion: models:/customer-segments@champion (version 1)." in text
    client = MlflowClient(tracking_uri=store)
    assert "report/report.html" in {a.path for a in client.list_artifacts(champion, "report")}
    assert client.list_artifacts(other, "report") == []


def test_report_of_a_dbscan_run_shows_noise_as_not_assigned(store, tmp_path):
    outcome = run_job(compose_config([f"mlflow.tracking_uri={store}", "algo=dbscan"]))
    metrics = MlflowClient(tracking_uri=store).get_run(outcome.run_id).data.metrics
    assert metrics["noise_fraction"] == pytest.approx(0.145)  # 29 of the 200 customers
    output = write_report(store, outcome.run_id, tmp_path / "dbscan.html", log_to_mlflow=False).path
    source = output.read_text()
    text = " ".join(" ".join(_parse(output).text).split())
    assert "5 segments of 200 customers · Not assigned: 29 customers (14.5%)" in text
    # Under the segment cards, one line: a count and a share, never a card of its own.
    assert (
        "Not assigned: 29 customers (14.5%): left out of every segment by the algorithm; "
        "not a segment, so no profile or actions."
    ) in text
    assert 'id="segment--1"' not in source  # no profile card for the noise
    assert source.count('<article class="card"') == 5
    assert text.count("Suggested actions") == 5
    assert "Unassigned" not in text and "Not a segment: leave out" not in text
    segments = json.loads(
        Path(
            MlflowClient(tracking_uri=store).download_artifacts(
                outcome.run_id, "segments.json", str(tmp_path)
            )
        ).read_text()
    )
    (noise,) = [s for s in segments["segments"] if s["id"] == -1]
    assert (noise["name"], noise["size"], noise["levels"], noise["actions"]) == (
        "Not assigned",
        29,
        {},
        [],
    )


def test_report_names_the_noise_as_the_runs_naming_says(store, tmp_path):
    """naming.noise.name is the noise's name in segments.json, and the report says the same."""
    overrides = [f"mlflow.tracking_uri={store}", "algo=dbscan", "naming.noise.name=Outliers"]
    outcome = run_job(compose_config(overrides))
    output = write_report(store, outcome.run_id, tmp_path / "noise.html", log_to_mlflow=False).path
    text = " ".join(" ".join(_parse(output).text).split())
    assert "5 segments of 200 customers · Outliers: 29 customers (14.5%)" in text
    assert "Not assigned" not in text


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory, _template_store) -> dict:
    """A sweep of k-means k=4, k=5 and DBSCAN (too much noise), and the report of its parent."""
    folder = tmp_path_factory.mktemp("report-sweep")
    store = _fresh_store(folder, _template_store)
    fast = [f"mlflow.tracking_uri={store}", "plots.enabled=false"]
    fast.append("evaluation.stability.n_resamples=0")
    tracker = Tracker(store)
    experiment_id = tracker.experiment_id("segexp-customers")
    parent = tracker.start_run(
        experiment_id, "sweep-s2", {"segexp.kind": "sweep", "segexp.sweep_id": "s2"}
    )
    sweep = SweepContext("s2", store, experiment_id, parent)
    jobs = (["k=4"], ["k=5"], ["algo=dbscan"])
    outcomes = [
        run_job(compose_config([*fast, *job]), sweep=sweep, job_num=n) for n, job in enumerate(jobs)
    ]
    finish_sweep(tracker, experiment_id, parent, "s2", outcomes, {})
    output = write_report(store, parent, folder / "sweep.html").path
    return {"store": store, "parent": parent, "outcomes": outcomes, "output": output}


def test_report_of_a_sweep_parent_reports_its_chosen_run_with_the_comparison(sweep_report):
    store, parent, outcomes = (
        sweep_report["store"],
        sweep_report["parent"],
        sweep_report["outcomes"],
    )
    client = MlflowClient(tracking_uri=store)
    metrics = {o.run_name: client.get_run(o.run_id).data.metrics for o in outcomes}
    dbscan = "dbscan-eps0.3-min_samples5-standard-income_spending"
    chosen = "kmeans-k5-standard-income_spending"
    assert metrics[dbscan]["silhouette"] > metrics[chosen]["silhouette"]  # noise left out
    assert metrics[dbscan]["noise_fraction"] > 0.1

    output = sweep_report["output"]
    source = output.read_text()
    text = " ".join(" ".join(_parse(output).text).split())
    assert f"Customer segments: {chosen}" in text
    assert (
        f"Chosen from sweep s2 (parent run {parent}): {chosen}, rank 1 of 2 runs by silhouette"
    ) in text
    assert "1 run left out: more than 10% of customers not assigned" in text
    assert "Leaderboard of sweep s2" in text and f"{chosen} ◀ chosen" in text
    assert source.count('<tr class="chosen">') == 1 and source.count('<tr class="left-out">') == 1
    assert dbscan in text
    chosen_id = next(o.run_id for o in outcomes if o.run_name == chosen)
    assert "report/report.html" in {a.path for a in client.list_artifacts(chosen_id, "report")}
    # The k plots show k-means only, and say so, since the table also lists DBSCAN.
    assert text.count("the chosen algorithm's runs only (kmeans / standard / income_spending)") == 2
    assert "the table also lists dbscan" in text


class _Tables(HTMLParser):
    """Each table's class, its header cells, and whether it sits in a <details> block."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._details = 0
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        if tag == "details":
            self._details += 1
        if tag == "table":
            self.tables.append({"class": dict(attrs).get("class"), "in_details": self._details > 0})
            self.tables[-1]["headings"] = []
        if tag == "th":
            self._in_th = True
            self.tables[-1]["headings"].append("")

    def handle_endtag(self, tag):
        self._details -= tag == "details"
        self._in_th = self._in_th and tag != "th"

    def handle_data(self, data):
        if self._in_th:
            self.tables[-1]["headings"][-1] += data


def test_report_leaderboard_shows_the_columns_that_matter_and_the_rest_in_details(sweep_report):
    parser = _Tables()
    parser.feed(sweep_report["output"].read_text())
    shown, rest = [t for t in parser.tables if t["class"] == "board"]
    assert not shown["in_details"] and rest["in_details"]
    assert shown["headings"] == [
        "rank",
        "run",
        "silhouette",
        "noise",
        "smallest segment",
        "segments",
        "algo",
        "k",
    ]  # no stability (n_resamples=0); scaler and features, the same for every run, said once
    text = _parse(sweep_report["output"]).text_joined()
    assert "Every run: scaler standard; features income_spending" in text
    for column in ("calinski_harabasz", "davies_bouldin", "inertia", "run_id", "feature_columns"):
        assert column in rest["headings"] and column not in shown["headings"]
    assert rest["headings"][0] == "run_name"


@pytest.mark.slow
def test_report_cli_after_a_sweep_shows_the_comparison_with_the_chosen_k(store, tmp_path):
    sweep = run_cli(["-m", "k=3..5", f"mlflow.tracking_uri={store}"], tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`segexp.kind` = 'job' and params.k = '4'",
    )
    assert len(runs) == 1
    run_id = runs[0].info.run_id

    result = run_cli(
        [f"run_id={run_id}", "output=out/report.html", f"mlflow.tracking_uri={store}"],
        tmp_path,
        module="segexp.report",
    )
    assert result.returncode == 0, result.stderr
    output = tmp_path / "out" / "report.html"
    source = output.read_text()
    page = _parse(output)
    text = " ".join(" ".join(page.text).split())
    assert "Leaderboard of sweep" in text
    for k in (3, 4, 5):
        assert f"kmeans-k{k}-standard-income_spending" in text
    assert source.count('<tr class="chosen">') == 1
    assert "kmeans-k4-standard-income_spending ◀ chosen" in text
    assert len(page.images) == 5  # elbow and silhouette vs k, scatter, heatmap, snake
    data = collect_report_data(store, run_id)
    assert set(data.k_plots) == {"elbow", "silhouette vs k"}
    assert "report/report.html" in {a.path for a in client.list_artifacts(run_id, "report")}


# --- a tampered store: every string is a script payload -----------------------------------

IMG = """<img src=x onerror="document.title='pwned'">"""
SCRIPT = "<script>document.title='pwned'</script>"
PAYLOAD = IMG + SCRIPT


def _plant(value) -> str:
    return f"{value}{PAYLOAD}"


def _planted(value, keys: bool = False):
    """Every string and number of a JSON value with the payload appended (keys too if asked)."""
    if isinstance(value, dict):
        return {(_plant(k) if keys else k): _planted(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_planted(v, keys) for v in value]
    return value if value is None else _plant(value)


def _planted_artifacts(document: dict, table: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """segments.json and profile.csv of a real run with the payload in every field and cell
    a person reads (names, texts, sizes, shares, column names, split values, levels, means);
    column names change the same way in both files, so the two still match."""
    base = document["base"]
    planted = {key: _planted(value) for key, value in document.items() if key != "base"}
    planted["segments"] = [
        {key: _planted(value, keys=key == "levels") for key, value in segment.items()}
        for segment in document["segments"]
    ]
    planted["base"] = {
        "size": _plant(base["size"]),
        "columns": {_plant(c): {**s, "median": PAYLOAD} for c, s in base["columns"].items()},
        "shares": _planted(base["shares"], keys=True),
    }
    stats = ("mean", "median", "q1", "q3", "std_diff", "rank_diff", "ratio", "level")
    rename = {f"{c}_{s}": f"{_plant(c)}_{s}" for c in document["profiled_columns"] for s in stats}
    for column, values in base["shares"].items():
        rename |= {f"{column}_{v}_share": f"{_plant(column)}_{_plant(v)}_share" for v in values}
    text = ["segment", "name", "archetype", "size", "share", "description", "actions"]
    assert set(table.columns) <= set(rename) | set(text)  # every column of profile.csv planted
    table = table.rename(columns=rename)
    for column in [*text, *(c for c in table.columns if c.endswith(("_mean", "_level")))]:
        table[column] = table[column].map(_plant)
    return planted, table


@pytest.fixture(scope="module")
def planted_report(real_run, tmp_path_factory, _template_store) -> dict:
    """The report of a sweep job whose run name, params, tags, segments.json, profile.csv and
    sweep leaderboard carry script payloads (the real run's artifacts, tampered with)."""
    source_store, source_run = real_run
    folder = tmp_path_factory.mktemp("planted")
    client = MlflowClient(tracking_uri=source_store)
    document = json.loads(
        Path(client.download_artifacts(source_run, "segments.json", str(folder))).read_text()
    )
    table = pd.read_csv(client.download_artifacts(source_run, "profile.csv", str(folder)))
    document, table = _planted_artifacts(document, table)

    store = _fresh_store(folder, _template_store)
    sweep_id, run_name = _plant("sweep"), _plant("kmeans-k5")
    parent = _manual_run(
        store, folder, tags={"segexp.kind": "sweep", "segexp.sweep_id": sweep_id}, name=_plant("p")
    )
    tags = {"segexp.kind": "job", "segexp.sweep_id": sweep_id}
    tags |= {f"segexp.{t}": _plant(t) for t in ("data_fingerprint", "data_source", "code_version")}
    params = {p: _plant(p) for p in ("algo", "scaler", "features", "k", "impute", "seed")}
    params["feature_columns"] = ",".join(document["feature_columns"])
    files = {"segments.json": json.dumps(document), "profile.csv": table.to_csv(index=False)}
    run_id = _manual_run(
        store, folder, tags=tags, params=params, files=files, name=run_name, parent=parent
    )
    runs = [
        (run_id, run_name, "kmeans", 5, 0.6, 0.0),
        ("0" * 32, _plant("other-run"), "gmm", 4, 0.5, 0.0),
        ("1" * 32, _plant("noisy-run"), "dbscan", None, 0.7, 0.3),  # left out: noise
    ]
    leaderboard = pd.DataFrame(
        [
            {"run_id": r, "run_name": n, "status": "FINISHED", "algo": _plant(a), "k": k}
            | {"scaler": _plant(a), "features": _plant("f"), "impute": _plant("i")}
            | {"silhouette": sil, "noise_fraction": noise, _plant("metric"): 1.0}
            | {"n_clusters": 5, "min_segment_share": 0.1, "stability": 0.9, "inertia": 9.0}
            for r, n, a, k, sil, noise in runs
        ]
    )
    staged = folder / "leaderboard"
    staged.mkdir()
    leaderboard.to_csv(staged / "leaderboard.csv", index=False)
    Tracker(store).client.log_artifacts(parent, str(staged))
    output = write_report(store, run_id, folder / "planted.html", log_to_mlflow=False).path
    shown = [*list(tags.values())[1:], *(params[p] for p in ("algo", "scaler", "k", "impute"))]
    expected = [run_name, *shown, *leaderboard["run_name"]]  # the strings the report shows
    expected += [*leaderboard["algo"], _plant("metric"), *document["profiled_columns"]]
    expected += [document["base"]["size"], *document["base"]["shares"], PAYLOAD]
    for segment in document["segments"]:
        if not str(segment["id"]).startswith("-1"):
            expected += [segment["name"], segment["description"], *segment["actions"]]
            expected += [segment["size"], segment["share"]]
    for values in document["base"]["shares"].values():
        expected += list(values)
    return {"output": output, "title": f"Customer segments: {run_name}", "expected": expected}


class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the title's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _tags(source: str) -> _Tags:
    parser = _Tags()
    parser.feed(source)
    return parser


def test_report_shows_every_planted_string_as_text_never_as_markup(planted_report):
    source = planted_report["output"].read_text()
    assert IMG not in source and SCRIPT not in source
    page = _tags(source)
    assert not [tag for tag, _ in page.tags if tag == "script"]
    assert not [(tag, a) for tag, attrs in page.tags for a in attrs if a.startswith("on")]
    assert all(attrs["src"].startswith("data:") for tag, attrs in page.tags if tag == "img")
    assert page.title == planted_report["title"]
    # Each planted value reached the page, as text a person reads.
    text = _parse(planted_report["output"]).text_joined()
    missing = [value for value in planted_report["expected"] if str(value) not in text]
    assert missing == [], missing


# --- in a real browser ------------------------------------------------------------------------

_CHECKER = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map((img) => ({
    alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}));
  const sections = [...document.querySelectorAll("main section")].map((s) => ({
    id: s.id, heading: s.querySelector("h2").innerText,
    height: s.getBoundingClientRect().height}));
  const out = document.createElement("pre");
  out.id = "segexp-check";
  out.textContent = JSON.stringify({images, sections, text: document.body.innerText});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _run_chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )


@pytest.mark.browser
def test_report_renders_in_headless_chromium(real_run, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("Chromium not found (/usr/bin/chromium or chromium on PATH)")
    store, run_id = real_run
    report = write_report(store, run_id, tmp_path / "report.html", log_to_mlflow=False).path
    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text().replace("</body>", _CHECKER + "</body>"))

    dom = _run_chromium(
        binary, tmp_path, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    start = dom.stdout.index('<pre id="segexp-check">') + len('<pre id="segexp-check">')
    result = json.loads(html.unescape(dom.stdout[start : dom.stdout.index("</pre>", start)]))

    assert [s["id"] for s in result["sections"]] == list(SECTIONS)
    for section in result["sections"]:
        assert section["heading"] == SECTIONS[section["id"]]
        assert section["height"] > 40
    for name in _expected_names(store, run_id, tmp_path).values():
        assert name in result["text"]
    assert len(result["images"]) == 3
    for image in result["images"]:
        assert image["complete"] and image["width"] > 200 and image["height"] > 100, image

    screenshot = tmp_path / "report.png"
    shot = _run_chromium(
        binary, tmp_path, "--window-size=1280,2400", f"--screenshot={screenshot}", report.as_uri()
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2400, 1280)
    assert np.std(pixels[..., :3]) > 0.05  # a rendered page, not a blank one


def _dom(binary: str, tmp_path: Path, page: Path, *args: str) -> str:
    dom = _run_chromium(
        binary, tmp_path, *args, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


@pytest.mark.browser
def test_report_with_planted_scripts_runs_none_in_headless_chromium(planted_report, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("Chromium not found (/usr/bin/chromium or chromium on PATH)")
    # The payload runs when a page holds it as markup: the check below can see a script run.
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><title>unchanged</title><p>{PAYLOAD}</p>")
    assert _tags(_dom(binary, tmp_path, control)).title == "pwned"

    dom = _tags(_dom(binary, tmp_path, planted_report["output"]))
    assert dom.title == planted_report["title"]
    assert not [tag for tag, _ in dom.tags if tag == "script"]
    assert not [(tag, a) for tag, attrs in dom.tags for a in attrs if a.startswith("on")]


_LAYOUT = """<script>
window.addEventListener("load", () => {
  const root = document.documentElement;
  const closed = root.scrollWidth;
  document.querySelectorAll("details").forEach((d) => { d.open = true; });
  const top = (selector) => document.querySelector(selector)?.getBoundingClientRect().top;
  const outside = [...document.querySelectorAll("main *")].filter((e) => !e.closest("details"));
  const wide = outside.filter((e) => e.getBoundingClientRect().right > window.innerWidth
    || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== "visible"));
  const out = document.createElement("pre");
  out.id = "segexp-layout";
  out.textContent = JSON.stringify({
    closed, opened: root.scrollWidth, width: window.innerWidth, height: window.innerHeight,
    wide: wide.map((e) => e.tagName + "." + e.className),
    first_h2: document.querySelector("main h2").parentElement.id,
    card: top("#segments .card"), pictures: top("#figures"), comparison: top("#comparison")});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.browser
def test_report_opens_with_the_segments_and_fits_1280_px(sweep_report, tmp_path):
    """Issue 24: the first screen is the segment cards; nothing runs off a 1,280 px window."""
    binary = _chromium()
    if binary is None:
        pytest.skip("Chromium not found (/usr/bin/chromium or chromium on PATH)")
    page = _parse(sweep_report["output"])
    assert page.section_ids[0] == "segments" and page.h2[0].strip() == "Segments"
    checked = tmp_path / "layout.html"
    checked.write_text(sweep_report["output"].read_text().replace("</body>", _LAYOUT + "</body>"))
    dom = _dom(binary, tmp_path, checked, "--window-size=1280,900")
    start = dom.index('<pre id="segexp-layout">') + len('<pre id="segexp-layout">')
    layout = json.loads(html.unescape(dom[start : dom.index("</pre>", start)]))
    assert layout["width"] == 1280, layout  # the window's height is 900 less its frame
    assert layout["closed"] <= 1280 and layout["opened"] <= 1280, layout
    assert layout["wide"] == []  # no box past the window, none scrolling sideways
    assert layout["first_h2"] == "segments"
    assert layout["card"] < layout["height"] / 2 < layout["pictures"] < layout["comparison"]
