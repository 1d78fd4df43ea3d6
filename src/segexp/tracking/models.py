"""The promoted segmentation as an MLflow pyfunc model shipping a copy of segexp (models from
code); segexp itself loads models as data, running no code from the store (docs/trust.md)."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.pyfunc import PyFuncModel, PythonModel  # not mlflow.pyfunc.X: mypy sees a LazyLoader
from mlflow.store.artifact.utils.models import get_model_name_and_version
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

from segexp.errors import TrackingError
from segexp.model import storage
from segexp.model.assign import SEGMENT_COLUMN, SEGMENT_NAME_COLUMN, SegmentAssigner
from segexp.tracking.store import resolve_tracking_uri, sqlite_path

ASSIGNER_FILE = "assigner.skops"
ASSIGNER_ARTIFACT = "assigner"
DESCRIPTION_FILE = "segexp_model.json"
MODEL_CODE_FILE = "segment_model_code.py"
PINNED = ("mlflow", "scikit-learn", "pandas", "numpy", "skops", "hydra-core", "omegaconf")
# Models from code: the model is this class, imported from the segexp copy shipped in the model.
_MODEL_CODE = """import mlflow
from segexp.tracking.models import SegmentModel

mlflow.models.set_model(SegmentModel())
"""


def model_signature(assigner: SegmentAssigner) -> ModelSignature:
    """Every accepted header as an optional column of any type: MLflow drops columns its
    signature does not name, and ``prepare`` checks the cells itself, naming the rows."""
    headers = dict.fromkeys(h for c in assigner.input_columns for h in assigner.accepted_headers(c))
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec(AnyType(), header, required=False) for header in headers
    ]
    outputs: list[ColSpec | TensorSpec] = [ColSpec("long", SEGMENT_COLUMN)]
    if assigner.segment_names:
        outputs.append(ColSpec("string", SEGMENT_NAME_COLUMN))
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


class SegmentModel(PythonModel):
    """pyfunc face of a ``SegmentAssigner``: a table of customers in, segment (and name) out."""

    def load_context(self, context) -> None:
        """Under MLflow's loader (``mlflow models serve``): the skops assigner, checked."""
        self.assigner: SegmentAssigner = load_assigner(Path(context.artifacts[ASSIGNER_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.assigner.assign(pd.DataFrame(model_input))


def load_assigner(path: Path, what: str | None = None) -> SegmentAssigner:
    """The assigner of a segexp model: skops with segexp's trusted types; a pickle (older
    segexp) only with ``SEGEXP_TRUST_PICKLE=1``."""
    what = what or f"model file {path.name}"
    if path.suffix in storage.PICKLE_SUFFIXES:
        again = "promote its source run again with this segexp (segexp-promote run_id=<run id>)"
        assigner = storage.load_pickle(path, what, again)
    else:
        assigner = storage.load(path, what)
    if not isinstance(assigner, SegmentAssigner):
        raise TrackingError(f"{what} holds a {type(assigner).__name__}, not a segexp assigner")
    return assigner


def pip_requirements() -> list[str]:
    """Pinned to this environment; explicit because inferring them costs seconds per model."""
    return [f"{name}=={version(name)}" for name in PINNED]


def save_segment_model(
    path: str | Path,
    assigner: SegmentAssigner,
    input_example: pd.DataFrame,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the assigner as an MLflow pyfunc model folder (signature, example, requirements)."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="segexp-model-") as tmp:
        assigner_file, model_code, package = (
            Path(tmp) / name for name in (ASSIGNER_FILE, MODEL_CODE_FILE, "segexp")
        )
        storage.save(assigner, assigner_file)
        model_code.write_text(_MODEL_CODE)
        source = Path(__file__).resolve().parents[1]
        shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        mlflow.pyfunc.save_model(
            path,
            python_model=str(model_code),
            artifacts={ASSIGNER_ARTIFACT: str(assigner_file)},
            code_paths=[str(package)],
            signature=model_signature(assigner),
            input_example=input_example[assigner.input_columns].head(5),
            pip_requirements=pip_requirements(),
            metadata={**assigner.describe(), **dict(metadata or {})},
        )
    (path / DESCRIPTION_FILE).write_text(json.dumps(assigner.describe(), indent=2))
    return path


def model_location(model_uri: str, client: MlflowClient) -> str:
    """Where a models:/ or runs:/ URI's files are, resolved through ``client`` (MLflow would
    use its global tracking URI in places)."""
    if model_uri.startswith("runs:/"):
        run_id, _, path = model_uri[len("runs:/") :].partition("/")
        return client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + path
    if not model_uri.startswith("models:/"):
        return model_uri
    found = get_model_name_and_version(client, model_uri)  # (name, version) or (model id,)
    if len(found) == 1:
        return client.get_logged_model(found[0]).artifact_location
    return client.get_model_version_download_uri(*found)


class _SegmentModelImpl:
    """What a PyFuncModel calls: the installed segexp's SegmentModel (no code from the folder)."""

    def __init__(self, python_model: SegmentModel) -> None:
        self.python_model = python_model

    def predict(self, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.python_model.predict(None, model_input, params)


def _not_segexp(uri: str, why: str) -> TrackingError:
    return TrackingError(
        f"model: {uri} {why}; segexp loads only the models it writes, as data (skops, "
        "checked types); MLflow's own loader would run that model's code: promote a segexp "
        f"run instead, or set {storage.TRUST_PICKLE_ENV}=1 only if you trust the model's author "
        "and everyone who can write the store"
    )


def _assigner_path(meta: Model, uri: str) -> str | None:
    """Where a segexp model keeps its assigner (checked to stay inside the model); None when
    the model is not segexp's."""
    conf = meta.flavors.get("python_function") or {}
    entry = (conf.get("artifacts") or {}).get(ASSIGNER_ARTIFACT)
    relative = entry.get("path") if isinstance(entry, dict) else None
    if not isinstance(relative, str):
        return None
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or ".." in parts or "\\" in relative:
        raise _not_segexp(uri, f"names an assigner file outside its folder: {relative}")
    return relative


def load_model_folder(folder: Path, uri: str) -> PyFuncModel:
    """A model folder as a pyfunc model; a segexp model as data only (its MLmodel file and its
    assigner are all that is read), another only with ``SEGEXP_TRUST_PICKLE=1``."""
    meta = Model.load(str(folder / "MLmodel"))
    relative = _assigner_path(meta, uri)
    if relative is None and not storage.pickle_trusted():
        raise _not_segexp(uri, f"was not written by segexp (no '{ASSIGNER_ARTIFACT}' artifact)")
    if relative is None:
        return mlflow.pyfunc.load_model(str(folder))
    if not (folder / relative).is_file():
        raise _not_segexp(uri, f"has no file {relative}")
    model = SegmentModel()
    model.assigner = load_assigner(folder / relative, f"model {uri}: {relative}")
    return PyFuncModel(model_meta=meta, model_impl=_SegmentModelImpl(model))


def load_model(model_uri: str, tracking_uri: str) -> PyFuncModel:
    """Any MLflow model URI from the given store (no global tracking URI is used), as
    ``load_model_folder`` loads it; TrackingError (one line) when it cannot be loaded."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if Path(model_uri).exists():
            return load_model_folder(Path(model_uri), model_uri)
        location = model_location(model_uri, client).rstrip("/")
        with tempfile.TemporaryDirectory(prefix="segexp-load-") as tmp:
            folder = Path(tmp) / "model"

            def fetch(relative: str, into: Path) -> str:
                uri = f"{location}/{relative}".rstrip("/")
                return download_artifacts(uri, dst_path=str(into), tracking_uri=tracking_uri)

            fetch("MLmodel", folder)  # a segexp model: that and the assigner file only
            relative = _assigner_path(Model.load(str(folder / "MLmodel")), model_uri)
            if relative is None and storage.pickle_trusted():  # another: its files, its loader
                return mlflow.pyfunc.load_model(fetch("", Path(tmp) / "all"))
            if relative is not None:
                fetch(relative, folder / PurePosixPath(relative).parent)
            return load_model_folder(folder, model_uri)
    except MlflowException as exc:
        hint = (
            "promote a run first: python -m segexp.promote run_id=<id>"
            if model_uri.startswith("models:/")
            else "pass a models:/, runs:/ or folder URI of an MLflow model"
        )
        message = " ".join(str(exc).split())[:300]
        raise TrackingError(
            f"model: cannot load '{model_uri}' from {tracking_uri} ({message}); {hint}"
        ) from exc


def champion_version(tracking_uri: str | None, name: str, alias: str, instead: str):
    """The model version ``models:/<name>@<alias>`` points at (what report and predict use
    without a run id or model); TrackingError saying how to make one when there is none."""
    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_path(uri)
    missing = db is not None and not db.exists()
    if not missing:
        with contextlib.suppress(MlflowException):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            return client.get_model_version_by_alias(name, alias)
    defaults = {"name": (name, "customer-segments"), "alias": (alias, "champion")}
    keys = "".join(f" registry.{key}={v}" for key, (v, default) in defaults.items() if v != default)
    where = f"{uri} (no MLflow store there)" if missing else uri
    raise TrackingError(
        f"no {alias} yet: run segexp-promote best=silhouette{keys} (or pass {instead}); "
        f"models:/{name}@{alias} is not in {where}"
    )
