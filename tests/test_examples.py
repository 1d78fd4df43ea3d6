"""The example notebook runs, top to bottom, against a store in a temporary folder
(issue 24.5): figures display inline, new customers are assigned, the sweep answers with
its leaderboard and no shell commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output["text"]
    data = output.get("data", {})
    return data.get("text/plain", "") + data.get("text/html", "")


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on any failing cell

    cells = {cell.source: cell.outputs for cell in notebook.cells if cell.cell_type == "code"}
    printed = "".join(_text(o) for outputs in cells.values() for o in outputs)
    assert "Fit one segmentation and log it as one MLflow run" in printed  # help(segexp.run)
    for source, outputs in cells.items():
        if source.startswith("result.figures"):
            assert any("image/png" in o.get("data", {}) for o in outputs), source
    predicted = next(v for k, v in cells.items() if "result.predict" in k)
    table = "".join(_text(o) for o in predicted)
    assert "Ana" in table and "Ben" in table and "segment_name" in table
    swept = next(v for k, v in cells.items() if "segexp.sweep" in k)
    assert "kmeans-k3" in "".join(_text(o) for o in swept)
    for command in ("segexp-compare", "segexp-promote best", "mlflow ui", "Next:"):
        assert command not in printed

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    jobs = mlflow_client.search_runs(experiments, "tags.`segexp.kind` = 'job'")
    assert len(jobs) == 1 + 8 and all(r.info.status == "FINISHED" for r in jobs)
    assert not list(tmp_path.glob("*.html"))  # the report was shown, not written
