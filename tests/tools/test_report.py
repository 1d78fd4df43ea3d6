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

from segexp.data.samples import generate_mall_sample
from segexp.errors import ConfigError, TrackingError
from segexp.insight.profiles import compute_profile
from segexp.insight.report import SECTIONS
from segexp.jobs.job import run_job
from segexp.jobs.outcomes import SweepContext
from segexp.jobs.summary import finish_sweep
from segexp.tools.promote import promote
from segexp.tools.report import build_report, collect_report_data, report_from_config
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
) -> str:
    """A run written directly through MlflowClient, for runs segexp itself would not make."""
    tracker = Tracker(store)
    experiment_id = tracker.experiment_id("report-tests")
    run_id = tracker.start_run(experiment_id, "manual", tags or {})
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
    """Every run carries its profile: the runner calls segexp.profiles.write_run_profile."""
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
    output = build_report(store, run_id, tmp_path / "nested" / "report.html")
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
    output = build_report(store, run_id, tmp_path / "r.html", log_to_mlflow=False)
    text = " ".join(" ".join(_parse(output).text).split())
    assert "profiled and named when this report was made" in text
    assert "feedbeef12345678" in text
    for name in ("Careful high earners", "Affluent big spenders", "Frugal low earners"):
        assert name in text
    assert MlflowClient(tracking_uri=store).list_artifacts(run_id, "report") == []


def test_report_errors_are_one_line_and_say_what_to_do(store, tmp_path):
    with pytest.raises(TrackingError) as info:
        build_report(store, "0123456789abcdef", tmp_path / "r.html")
    assert "run_id=0123456789abcdef: no such run" in str(info.value)
    assert "mlflow.tracking_uri" in str(info.value)

    parent = _manual_run(
        store,
        tmp_path,
        tags={"segexp.kind": "sweep", "segexp.sweep_id": "s1", "segexp.best_run_id": "abc"},
    )
    with pytest.raises(TrackingError) as info:
        build_report(store, parent, tmp_path / "r.html")
    assert "parent run of sweep s1, which has no job runs to report" in str(info.value)

    failed = _manual_run(
        store, tmp_path, status="FAILED", tags={"segexp.error": "ValueError: boom\ntrace"}
    )
    with pytest.raises(TrackingError) as info:
        build_report(store, failed, tmp_path / "r.html")
    assert "ended FAILED (ValueError: boom)" in str(info.value)
    assert "\n" not in str(info.value)

    empty = _manual_run(store, tmp_path, tags={"segexp.kind": "job"})
    with pytest.raises(TrackingError, match="neither segments.json nor assignments.csv"):
        build_report(store, empty, tmp_path / "r.html")


def test_report_output_that_cannot_be_written_is_a_config_error(real_run, tmp_path):
    store, run_id = real_run
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as info:
        build_report(store, run_id, blocker / "report.html", log_to_mlflow=False)
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
    output = build_report(store, outcome.run_id, tmp_path / "dbscan.html", log_to_mlflow=False)
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


def test_report_of_a_sweep_parent_reports_its_chosen_run_with_the_comparison(store, tmp_path):
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
    client = MlflowClient(tracking_uri=store)
    metrics = {o.run_name: client.get_run(o.run_id).data.metrics for o in outcomes}
    dbscan = "dbscan-eps0.3-min_samples5-standard-income_spending"
    chosen = "kmeans-k5-standard-income_spending"
    assert metrics[dbscan]["silhouette"] > metrics[chosen]["silhouette"]  # noise left out
    assert metrics[dbscan]["noise_fraction"] > 0.1

    output = build_report(store, parent, tmp_path / "sweep.html")
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
    report = build_report(store, run_id, tmp_path / "report.html", log_to_mlflow=False)
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
