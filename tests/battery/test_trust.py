"""Battery: what whoever can write the tracking store plants is refused, one line, exit 2.

Each case plants its files in its own folder: the seeded store's run is pointed at a
copy of its artifacts there (the seed's own artifacts are shared between cases), then
edited as an attacker would. Every payload would write ``owned.txt`` in the case's
folder if it ran; the harness's "no file left behind" check and the test's own
assertion both say it did not.
"""

from __future__ import annotations

import builtins
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import joblib
import pytest
import yaml

from tests.battery.harness import STORE_FILE, case

MARKER = "owned.txt"


class Owned:
    """Unpickling this writes the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.write_text, (self.marker, "owned"))


def _own_copy(folder: Path) -> Path:
    """Point the seeded run (the battery's ``{run_id}``) at a copy of its artifacts in
    ``folder``; return the copy."""
    from mlflow.tracking import MlflowClient

    store = folder / STORE_FILE
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    run = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="tags.`segexp.kind` = 'job'",
    )[0]
    uri = run.info.artifact_uri
    source = Path(urlparse(uri).path if uri.startswith("file:") else uri)
    copy = folder / "planted" / run.info.run_id
    shutil.copytree(source, copy)
    with sqlite3.connect(store) as db:
        db.execute(
            "update runs set artifact_uri = ? where run_uuid = ?", (str(copy), run.info.run_id)
        )
    return copy


def _untrusted_skops(path: Path, marker: Path) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipeline = Pipeline([("x", FunctionTransformer(func=builtins.exec)), ("y", Owned(marker))])
    sio.dump(pipeline, path)


def pickle_only(folder: Path) -> None:
    model = _own_copy(folder) / "model"
    (model / "pipeline.skops").unlink()
    joblib.dump(Owned(folder / MARKER), model / "pipeline.joblib")


def untrusted_pipeline(folder: Path) -> None:
    model = _own_copy(folder) / "model"
    _untrusted_skops(model / "pipeline.skops", folder / MARKER)
    joblib.dump(Owned(folder / MARKER), model / "pipeline.joblib")


def pickle_named_skops(folder: Path) -> None:
    model = _own_copy(folder) / "model"
    joblib.dump(Owned(folder / MARKER), model / "pipeline.skops")


def stored_config(edit: Callable[[dict, Path], None]) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        path = _own_copy(folder) / "config.yaml"
        planted = folder / "planted.joblib"
        joblib.dump(Owned(folder / MARKER), planted)
        cfg = yaml.safe_load(path.read_text())
        edit(cfg, planted)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))

    return setup


def model_folder(assigner: str | None) -> Callable[[Path], None]:
    """``folder/model``: an MLflow pyfunc model; with ``assigner``, made to look like a
    segexp model whose assigner is a pickle (``.joblib``) or an untrusted skops file."""

    def setup(folder: Path) -> None:
        import mlflow

        class Planted(mlflow.pyfunc.PythonModel):
            def load_context(self, context):
                (folder / MARKER).write_text("owned")

            def predict(self, context, model_input, params=None):
                return [0] * len(model_input)

        model = folder / "model"
        mlflow.pyfunc.save_model(model, python_model=Planted(), pip_requirements=["mlflow"])
        if assigner is None:
            return
        (model / "artifacts").mkdir(exist_ok=True)
        file = model / "artifacts" / assigner
        if assigner.endswith(".joblib"):
            joblib.dump(Owned(folder / MARKER), file)
        else:
            _untrusted_skops(file, folder / MARKER)
        mlmodel = yaml.safe_load((model / "MLmodel").read_text())
        mlmodel["flavors"]["python_function"]["artifacts"] = {
            "assigner": {"path": f"artifacts/{assigner}", "uri": str(file)}
        }
        (model / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    return setup


PROMOTE = "mlflow.tracking_uri={store} run_id={run_id}"
RERUN = "mlflow.tracking_uri={store} run_id={run_id}"
PREDICT = "mlflow.tracking_uri={store} input={mall} output={dir}/out.csv model={dir}/model"

CASES = [
    case("promote-planted-pickle-dry-run", f"{PROMOTE} dry_run=true", "is a pickle",
         "segexp-rerun", "SEGEXP_TRUST_PICKLE=1", module="segexp.promote", seeded=True,
         setup=pickle_only),
    case("promote-planted-pickle", PROMOTE, "model/pipeline.joblib is a pickle",
         module="segexp.promote", seeded=True, setup=pickle_only),
    case("promote-untrusted-skops-dry-run", f"{PROMOTE} dry_run=true",
         "model/pipeline.skops holds types segexp does not trust", "builtins.exec",
         module="segexp.promote", seeded=True, setup=untrusted_pipeline),
    case("promote-untrusted-skops", PROMOTE, "does not trust", "Owned",
         module="segexp.promote", seeded=True, setup=untrusted_pipeline),
    case("promote-pickle-named-skops", f"{PROMOTE} dry_run=true",
         "model/pipeline.skops is not a readable skops file", module="segexp.promote",
         seeded=True, setup=pickle_named_skops),
    case("rerun-target-joblib-load", RERUN, "key algo._target_ names joblib.load",
         "nothing was run", module="segexp.rerun", seeded=True,
         setup=stored_config(lambda c, p: c["algo"].update(_target_="joblib.load",
                                                           filename=str(p)))),
    case("rerun-target-nested-in-hyperparameter", RERUN,
         "key algo.init._target_ names joblib.load", module="segexp.rerun", seeded=True,
         setup=stored_config(lambda c, p: c["algo"].update(
             init={"_target_": "joblib.load", "filename": str(p)}))),
    case("rerun-target-os-system", RERUN, "key scaler._target_ names os.system",
         module="segexp.rerun", seeded=True,
         setup=stored_config(lambda c, p: c["scaler"].update(
             _target_="os.system", _args_=[f"touch {p.parent / MARKER}"]))),
    case("rerun-target-builtins-eval", RERUN, "names builtins.eval", module="segexp.rerun",
         seeded=True,
         setup=stored_config(lambda c, p: c["algo"].update(
             n_init={"_target_": "builtins.eval",
                     "_args_": [f"__import__('joblib').load({str(p)!r}) or 10"]}))),
    case("rerun-interpolation", RERUN, "key data.name holds an interpolation",
         module="segexp.rerun", seeded=True,
         setup=stored_config(lambda c, p: c["data"].update(name="${oc.env:HOME}"))),
    case("predict-model-segexp-did-not-write", PREDICT, "was not written by segexp",
         "SEGEXP_TRUST_PICKLE=1", module="segexp.predict", seeded=True,
         setup=model_folder(None)),
    case("predict-pickled-assigner", PREDICT, "artifacts/assigner.joblib is a pickle",
         module="segexp.predict", seeded=True, setup=model_folder("assigner.joblib")),
    case("predict-untrusted-assigner", PREDICT,
         "artifacts/assigner.skops holds types segexp does not trust", "builtins.exec",
         module="segexp.predict", seeded=True, setup=model_folder("assigner.skops")),
]  # fmt: skip


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_untrusted_is_refused(battery, tmp_path, c):
    battery(c)
    assert not (tmp_path / "work" / MARKER).exists()
