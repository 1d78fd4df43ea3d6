"""segexp init: a starter project from a table, then a real run in it with the new data option.
Real subprocesses, a real store read back with MlflowClient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from conftest import run_cli
from mlflow.tracking import MlflowClient


def _shop_table(path):
    """A customer table of another shop (not the mall's columns): 120 customers."""
    rng = np.random.default_rng(3)
    n = 120
    pd.DataFrame(
        {
            "member_no": [f"M{i:04d}" for i in range(n)],
            "region": rng.choice(["north", "south", "east"], n),
            "visits": rng.poisson(8, n),
            "basket_eur": rng.gamma(4.0, 20.0, n).round(2),
            "tenure_months": rng.integers(1, 60, n),
        }
    ).to_csv(path, index=False)


def test_init_writes_a_project_whose_data_option_runs(tmp_path, store):
    table = tmp_path / "Shop Customers.csv"
    _shop_table(table)
    result = run_cli(["init", "proj", f"data.path={table}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "proj"
    data_file = project / "conf" / "data" / "shop_customers.yaml"
    written = yaml.safe_load(data_file.read_text())
    assert written["name"] == "shop_customers"
    assert written["path"] == str(table)
    assert written["id_column"] == "member_no"
    assert written["categorical"] == ["region"]
    assert written["numeric"] == ["visits", "basket_eur", "tenure_months"]
    assert (project / "conf" / "algo" / "my_kmeans.yaml").exists()
    ignored = (project / ".gitignore").read_text().splitlines()
    assert "mlflow.db" in ignored and "mlruns/" in ignored
    assert "segexp data=shop_customers" in result.stdout
    assert "segexp data=shop_customers" in (project / "next-steps.md").read_text()

    run = run_cli(
        ["data=shop_customers", "algo=my_kmeans", "k=3", f"mlflow.tracking_uri={store}"],
        cwd=project,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("segexp-shop_customers")
    (job,) = client.search_runs([experiment.experiment_id])
    assert job.info.status == "FINISHED"
    assert job.data.params["algo"] == "my_kmeans"
    assert job.data.params["schema.id"] == "member_no"
    assert job.data.metrics["n_clusters"] == 3
    assert not (project / "mlflow.db").exists()  # the store named on the command line only


def test_init_never_replaces_a_file_and_bad_input_writes_nothing(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".gitignore").write_text("mine\n")
    result = run_cli(["init", "proj"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (project / ".gitignore").read_text() == "mine\n"
    assert "kept   proj/.gitignore" in result.stdout
    template = (project / "conf" / "data" / "my_data.yaml").read_text()
    assert "path: null" in template and "numeric: auto" in template
    again = run_cli(["init", "proj"], cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("kept   ") == 4

    for args, expected in (
        (["init", "other", f"data.path={tmp_path / 'nope.csv'}"], "nope.csv: file not found"),
        (["init", "other", "data.pth=x.csv"], "data.pth: no such key for segexp init"),
    ):
        bad = run_cli(args, cwd=tmp_path)
        assert bad.returncode == 2
        (line,) = bad.stderr.strip().splitlines()
        assert line.startswith("segexp: error: ") and expected in line
        assert not (tmp_path / "other").exists()
