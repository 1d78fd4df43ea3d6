"""Trust: what a tracking store holds is data. Planted pickles, untrusted skops files and
stored ``_target_``s are refused by promote, predict and rerun, and never run.

Every attack here is a real file in a real run of a real store, written the way anyone
who can write the store could; each would write a marker file if it ran.
"""

from __future__ import annotations

import builtins
import pickle
import shutil
from pathlib import Path
from urllib.parse import urlparse

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml
from conftest import CONF_DIR, run_cli
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from segexp.data import load_customers
from segexp.errors import ConfigError, TrackingError
from segexp.jobs.job import run_job
from segexp.model import storage
from segexp.model.assign import SegmentAssigner
from segexp.model.pipeline import fit_configured, split_feature_kinds
from segexp.tools.predict import predict
from segexp.tools.promote import promote
from segexp.tools.rerun import rerun
from segexp.tracking.models import load_model
from segexp.tracking.stored_config import check_stored_config

NAME = "customer-segments"


class Owned:
    """Unpickling this writes the marker: what a planted pickle can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.write_text, (self.marker, "owned"))


def tool_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


def make_run(make_config, store: str, *overrides: str) -> str:
    outcome = run_job(
        make_config([f"mlflow.tracking_uri={store}", "plots.enabled=false", *overrides])
    )
    assert outcome.status == "finished", outcome.message
    return outcome.run_id


def artifact_dir(store: str, run_id: str) -> Path:
    """The run's artifact folder on disk: what an attacker with write access edits."""
    uri = MlflowClient(store).get_run(run_id).info.artifact_uri
    return Path(urlparse(uri).path if uri.startswith("file:") else uri)


def plant_pickle(path: Path, marker: Path) -> Path:
    joblib.dump(Owned(marker), path)
    return path


def untrusted_skops(path: Path, marker: Path) -> Path:
    """A skops pipeline with types segexp never writes (an exec step, a marker writer)."""
    sio.dump(
        Pipeline([("owned", FunctionTransformer(func=builtins.exec)), ("more", Owned(marker))]),
        path,
    )
    return path


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "owned.txt"


def test_the_planted_pickle_is_live(tmp_path):
    """The payload really runs when unpickled (so its absence below means it was not)."""
    probe = tmp_path / "probe.txt"
    pickle.loads(pickle.dumps(Owned(probe)))
    assert probe.read_text() == "owned"


# --- segexp's own models: skops, every type on the list -----------------------------------

STORED_CASES = [
    *([f"algo={f.stem}"] for f in sorted((CONF_DIR / "algo").glob("*.yaml"))),
    *([f"scaler={f.stem}"] for f in sorted((CONF_DIR / "scaler").glob("*.yaml"))),
    ["preprocess=clip_iqr"],
    ["preprocess=winsorize"],
    ["preprocess=impute_median"],
    ["preprocess.impute=knn"],
    ["preprocess.log1p=[annual_income]"],
    ["features=all_numeric"],
    ["features.columns=[gender,age,spending_score]", "preprocess.impute=most_frequent"],
    ["data=transactions_sample", "features=rfm", "preprocess=rfm_log"],
    ["scaler=minmax", "+scaler.feature_range=[0,10]"],  # a tuple parameter (from a list)
]


@pytest.mark.parametrize("overrides", STORED_CASES, ids=lambda o: " ".join(o))
def test_segexp_models_hold_only_trusted_types_and_load_back(make_config, tmp_path, overrides):
    """get_untrusted_types on what segexp writes (pipeline and promoted assigner) is covered
    by storage.TRUSTED_TYPES, and the loaded objects assign exactly as the fitted ones."""
    cfg = make_config(overrides)
    table = load_customers(cfg.data)
    fitted = fit_configured(table.frame, cfg, table)
    pipeline_file = storage.save(fitted.pipeline, tmp_path / "pipeline.skops")
    assert set(sio.get_untrusted_types(file=pipeline_file)) <= set(storage.TRUSTED_TYPES)
    loaded = storage.load(pipeline_file)
    if hasattr(fitted.pipeline[-1], "predict"):
        np.testing.assert_array_equal(loaded.predict(fitted.features), fitted.labels)
    else:
        np.testing.assert_allclose(
            loaded[:-1].transform(fitted.features), fitted.transformed, rtol=1e-12
        )

    training = table.frame.iloc[fitted.kept_rows].copy()
    training["segment"] = fitted.labels
    columns = list(fitted.features.columns)
    numeric, _ = split_feature_kinds(columns, table.categorical, training)
    assigner = SegmentAssigner.from_run(
        fitted.pipeline, {"input_columns": columns, "numeric_columns": numeric}, training
    )
    assigner_file = storage.save(assigner, tmp_path / "assigner.skops")
    assert set(sio.get_untrusted_types(file=assigner_file)) <= set(storage.TRUSTED_TYPES)
    again = storage.load(assigner_file)
    pd.testing.assert_frame_equal(again.assign(training), assigner.assign(training))


def test_a_run_stores_its_pipeline_as_skops_and_no_pickle(make_config, store):
    run_id = make_run(make_config, store, "algo=kmeans")
    files = {a.path for a in MlflowClient(store).list_artifacts(run_id, "model")}
    assert "model/pipeline.skops" in files
    assert not any(f.endswith((".joblib", ".pkl", ".pickle")) for f in files)


# --- promote: planted pickles and untrusted skops files -----------------------------------


def promote_with(store: str, run_id: str, *overrides: str):
    return promote(
        tool_config(
            "promote",
            [f"mlflow.tracking_uri={store}", f"run_id={run_id}", "report.enabled=false"]
            + list(overrides),
        )
    )


@pytest.mark.parametrize("dry_run", ["true", "false"])
def test_promote_refuses_a_run_holding_only_a_pickle(make_config, store, marker, dry_run):
    run_id = make_run(make_config, store, "algo=kmeans")
    model = artifact_dir(store, run_id) / "model"
    (model / "pipeline.skops").unlink()
    plant_pickle(model / "pipeline.joblib", marker)  # what a run of older segexp holds
    with pytest.raises(TrackingError) as caught:
        promote_with(store, run_id, f"dry_run={dry_run}")
    message = str(caught.value)
    assert f"run {run_id}: model/pipeline.joblib is a pickle" in message
    assert f"segexp-rerun run_id={run_id}" in message and "SEGEXP_TRUST_PICKLE=1" in message
    assert caught.value.exit_code == 2
    assert not marker.exists()
    assert MlflowClient(store).search_registered_models() == []


def test_promote_refuses_untrusted_types_even_beside_a_pickle(make_config, store, marker):
    run_id = make_run(make_config, store, "algo=kmeans")
    model = artifact_dir(store, run_id) / "model"
    untrusted_skops(model / "pipeline.skops", marker)
    plant_pickle(model / "pipeline.joblib", marker)
    for dry_run in ("true", "false"):
        with pytest.raises(TrackingError) as caught:
            promote_with(store, run_id, f"dry_run={dry_run}")
        message = str(caught.value)
        assert message.startswith(
            f"run {run_id}: model/pipeline.skops holds types segexp does not trust: "
        )
        assert "builtins.exec" in message and "test_trust.Owned" in message
    assert not marker.exists()


def test_promote_refuses_a_pickle_named_skops(make_config, store, marker):
    run_id = make_run(make_config, store, "algo=kmeans")
    plant_pickle(artifact_dir(store, run_id) / "model" / "pipeline.skops", marker)
    with pytest.raises(TrackingError, match="is not a readable skops file"):
        promote_with(store, run_id, "dry_run=true")
    assert not marker.exists()


def test_promote_cli_refuses_the_planted_pickle_with_one_line(make_config, store, marker, tmp_path):
    run_id = make_run(make_config, store, "algo=kmeans")
    model = artifact_dir(store, run_id) / "model"
    (model / "pipeline.skops").unlink()
    plant_pickle(model / "pipeline.joblib", marker)
    result = run_cli(
        [f"mlflow.tracking_uri={store}", f"run_id={run_id}", "dry_run=true"],
        cwd=tmp_path,
        module="segexp.promote",
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("segexp: error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("segexp: error: run "), result.stderr
    assert "is a pickle" in lines[0]
    assert not marker.exists()


def test_an_old_pickle_loads_only_when_the_user_trusts_it(make_config, store, monkeypatch):
    """SEGEXP_TRUST_PICKLE=1 is the explicit, documented opt-in for runs of older segexp."""
    run_id = make_run(make_config, store, "algo=kmeans")
    model = artifact_dir(store, run_id) / "model"
    joblib.dump(storage.load(model / "pipeline.skops"), model / "pipeline.joblib")
    (model / "pipeline.skops").unlink()
    with pytest.raises(TrackingError, match="is a pickle"):
        promote_with(store, run_id, "dry_run=true")
    monkeypatch.setenv("SEGEXP_TRUST_PICKLE", "1")
    assert promote_with(store, run_id, "dry_run=true").agreement == 1.0


# --- predict: the registered model is read as data -----------------------------------------


@pytest.fixture
def champion(make_config, store, tmp_path):
    """A promoted kmeans run; (store, folder of the champion's files on disk)."""
    run_id = make_run(make_config, store, "algo=kmeans")
    promote_with(store, run_id)
    client = MlflowClient(store, registry_uri=store)
    version = client.get_model_version_by_alias(NAME, "champion")
    source = client.get_model_version_download_uri(NAME, version.version)
    return store, Path(urlparse(source).path if source.startswith("file:") else source)


def predict_with(store: str, tmp_path: Path, mall_csv: Path, *overrides: str):
    return predict(
        tool_config(
            "predict",
            [
                f"mlflow.tracking_uri={store}",
                f"input={mall_csv}",
                f"output={tmp_path / 'segments.csv'}",
                *overrides,
            ],
        )
    )


def test_promoted_model_holds_skops_and_loads_without_its_code(champion, tmp_path, mall_csv):
    """The champion's model-code file is never run by segexp: a planted one does nothing."""
    store, folder = champion
    assert (folder / "artifacts" / "assigner.skops").is_file()
    assert not list(folder.glob("artifacts/*.joblib"))
    marker = tmp_path / "owned.txt"
    (folder / "segment_model_code.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('owned')\n"
    )
    shipped = folder / "code" / "segexp" / "__init__.py"
    shipped.write_text(shipped.read_text() + f"\nopen({str(marker)!r}, 'w').write('owned')\n")
    result = predict_with(store, tmp_path, mall_csv)
    assert result.scored == result.rows == 200
    assert not marker.exists()


def test_predict_refuses_untrusted_types_in_the_champion(champion, tmp_path, mall_csv, marker):
    store, folder = champion
    untrusted_skops(folder / "artifacts" / "assigner.skops", marker)
    with pytest.raises(TrackingError) as caught:
        predict_with(store, tmp_path, mall_csv)
    message = str(caught.value)
    assert message.startswith(
        f"model models:/{NAME}@champion: artifacts/assigner.skops holds types segexp does not "
        "trust: builtins.exec"
    )
    assert not marker.exists() and not (tmp_path / "segments.csv").exists()


def test_predict_refuses_a_pickled_champion(champion, tmp_path, mall_csv, marker):
    """A model of older segexp (assigner.joblib) or a planted one: refused, never unpickled."""
    store, folder = champion
    (folder / "artifacts" / "assigner.skops").unlink()
    plant_pickle(folder / "artifacts" / "assigner.joblib", marker)
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    mlmodel["flavors"]["python_function"]["artifacts"]["assigner"]["path"] = (
        "artifacts/assigner.joblib"
    )
    (folder / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(TrackingError) as caught:
        predict_with(store, tmp_path, mall_csv)
    message = str(caught.value)
    assert "artifacts/assigner.joblib is a pickle" in message
    assert "segexp-promote run_id=" in message
    assert not marker.exists()
    result = run_cli(
        [f"mlflow.tracking_uri={store}", f"input={mall_csv}", f"output={tmp_path / 'o.csv'}"],
        cwd=tmp_path,
        module="segexp.predict",
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("segexp: error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("segexp: error: model models:/customer-segments@champion: ")
    assert not marker.exists() and not (tmp_path / "o.csv").exists()


def test_predict_refuses_a_model_segexp_did_not_write(store, tmp_path, mall_csv, marker):
    """A plain MLflow pyfunc model is code (cloudpickle): refused unless the user opts in."""

    class Planted(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return np.zeros(len(model_input), dtype=int)

    folder = tmp_path / "planted-model"
    mlflow.pyfunc.save_model(folder, python_model=Planted(), pip_requirements=["mlflow"])
    with pytest.raises(TrackingError, match="was not written by segexp"):
        load_model(str(folder), store)
    assert not marker.exists()


# --- rerun: stored _target_s are checked before anything is built -------------------------


def rerun_with(store: str, run_id: str):
    return rerun(tool_config("rerun", [f"mlflow.tracking_uri={store}", f"run_id={run_id}"]))


def edit_config(store: str, run_id: str, edit) -> None:
    path = artifact_dir(store, run_id) / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def runs_in(store: str) -> int:
    client = MlflowClient(store)
    return len(client.search_runs([e.experiment_id for e in client.search_experiments()]))


@pytest.mark.parametrize(
    ("key", "edit", "named"),
    [
        (
            "algo._target_",
            lambda cfg, p: cfg["algo"].update(_target_="joblib.load", filename=p),
            "joblib.load",
        ),
        (
            "algo.init._target_",
            lambda cfg, p: cfg["algo"].update(init={"_target_": "joblib.load", "filename": p}),
            "joblib.load",
        ),
        (
            "scaler._target_",
            lambda cfg, p: cfg["scaler"].update(
                _target_="builtins.eval", _args_=[f"__import__('joblib').load({p!r})"]
            ),
            "builtins.eval",
        ),
        (
            "algo.n_init[0]._target_",
            lambda cfg, p: cfg["algo"].update(n_init=[{"_target_": "os.system", "_args_": ["x"]}]),
            "os.system",
        ),
        (
            "algo._target_",
            lambda cfg, p: cfg["algo"].update(_target_="sklearn.datasets.load_svmlight_file"),
            "sklearn.datasets.load_svmlight_file",
        ),
    ],
    ids=[
        "joblib-load",
        "nested-in-hyperparameter",
        "builtins-eval",
        "in-a-list",
        "sklearn-non-estimator",
    ],
)
def test_rerun_refuses_stored_targets_it_does_not_allow(
    make_config, store, marker, tmp_path, key, edit, named
):
    run_id = make_run(make_config, store, "algo=kmeans")
    planted = plant_pickle(tmp_path / "planted.joblib", marker)
    edit_config(store, run_id, lambda cfg: edit(cfg, str(planted)))
    before = runs_in(store)
    with pytest.raises(ConfigError) as caught:
        rerun_with(store, run_id)
    assert str(caught.value).startswith(
        f"run {run_id}: config.yaml: key {key} names {named}, which segexp does not instantiate"
    )
    assert caught.value.exit_code == 2
    assert runs_in(store) == before
    assert not marker.exists()


def test_rerun_cli_refuses_joblib_load_with_one_line(make_config, store, marker, tmp_path):
    run_id = make_run(make_config, store, "algo=kmeans")
    planted = plant_pickle(tmp_path / "planted.joblib", marker)
    edit_config(
        store, run_id, lambda cfg: cfg["algo"].update(_target_="joblib.load", filename=str(planted))
    )
    result = run_cli(
        [f"mlflow.tracking_uri={store}", f"run_id={run_id}"], cwd=tmp_path, module="segexp.rerun"
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("segexp: error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0] == (
        f"segexp: error: run {run_id}: config.yaml: key algo._target_ names joblib.load, which "
        "segexp does not instantiate from a stored config; allowed: scikit-learn estimators, "
        "segexp's own classes and the _target_ of your own conf/algo or conf/scaler files "
        "(add one there if it is yours); nothing was run"
    )
    assert not marker.exists()


def test_rerun_and_promote_refuse_interpolations_in_a_stored_config(make_config, store):
    run_id = make_run(make_config, store, "algo=kmeans")
    edit_config(store, run_id, lambda cfg: cfg["data"].update(aliases={"age": ["${oc.env:HOME}"]}))
    for tool in (rerun_with, lambda s, r: promote_with(s, r, "dry_run=true")):
        with pytest.raises(ConfigError, match=r"key data.aliases.age\[0\] holds an interpolation"):
            tool(store, run_id)


def test_rerun_of_a_pickle_only_run_works_and_reads_no_pickle(make_config, store, marker):
    """The way out for runs of older segexp: rerun re-fits from config.yaml alone."""
    run_id = make_run(make_config, store, "algo=kmeans")
    model = artifact_dir(store, run_id) / "model"
    (model / "pipeline.skops").unlink()
    plant_pickle(model / "pipeline.joblib", marker)
    result = rerun_with(store, run_id)
    assert not marker.exists()
    files = {a.path for a in MlflowClient(store).list_artifacts(result.new_run_id, "model")}
    assert "model/pipeline.skops" in files
    promote_with(store, result.new_run_id, "dry_run=true")


def test_targets_of_the_users_own_algo_configs_are_allowed(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    (conf / "algo").mkdir(parents=True)
    (conf / "algo" / "mine.yaml").write_text("_target_: mypackage.clusters.MyClusterer\n")
    stored = OmegaConf.create({"algo": {"_target_": "mypackage.clusters.MyClusterer", "k": 4}})
    with pytest.raises(ConfigError, match="key algo._target_ names mypackage.clusters.MyClu"):
        check_stored_config(stored, "run x: config.yaml")
    monkeypatch.setenv("SEGEXP_CONF_DIR", str(conf))
    assert check_stored_config(stored, "run x: config.yaml") is stored
    assert "mypackage.clusters.MyClusterer" in storage.trusted_types()


def test_every_shipped_target_is_allowed():
    shipped = storage.user_targets(CONF_DIR)
    assert "sklearn.cluster.KMeans" in shipped and len(shipped) >= 10
    from segexp.tracking.stored_config import target_allowed

    assert all(target_allowed(t, set()) for t in shipped)
    assert target_allowed("sklearn.cluster.BisectingKMeans", set())
    for bad in ("joblib.load", "sklearn.datasets.load_svmlight_file", "sklearn", "os.system", 5):
        assert not target_allowed(bad, set())


def test_copied_store_keeps_working(champion, tmp_path, mall_csv):
    """Sanity: the champion fixture's untouched model predicts (the baseline of the above)."""
    store, folder = champion
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    model = load_model(str(copy), store)
    assert len(model.predict(pd.read_csv(mall_csv))) == 200
