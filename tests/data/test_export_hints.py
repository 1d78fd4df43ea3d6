"""Exports and hints: Excel's "(blank)" and other export markers are missing in every
shipped data option; lines without a customer are set aside and counted; every key a data
message names exists in the composed config, so its hint can be typed as it is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd
import pytest
import tables
from conftest import CONF_DIR, PROJECT_DIR, mall_data_cfg, run_cli
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from segexp.data import load_customers
from segexp.data.read import DEFAULT_MISSING_VALUES
from segexp.errors import DataError

DATA_OPTIONS = ("mall_sample", "transactions_sample")


def load(path, **overrides):
    return load_customers(mall_data_cfg(path=str(path), **overrides))


@pytest.mark.parametrize("option", DATA_OPTIONS)
def test_shipped_missing_markers_are_the_readers(option):
    shipped = OmegaConf.load(CONF_DIR / "data" / f"{option}.yaml").missing_values
    assert list(shipped) == list(DEFAULT_MISSING_VALUES)
    assert {"(blank)", "N/A", "#N/A", "NULL", "null", "-", "?"} <= set(shipped)


def blank_customer_export(folder: Path) -> tuple[Path, int]:
    """The invoice-line export with Excel's "(blank)" for a missing customer; like the
    Online Retail file, lines without a customer include adjustments with a negative
    quantity on invoices that are not cancellations. (path, lines without a customer)."""
    path = tables.invoice_lines(folder)
    lines = pd.read_csv(path, dtype=str, keep_default_na=False)
    blank = lines["CustomerID"] == ""
    lines.loc[blank, "CustomerID"] = "(blank)"
    adjustment = lines.index[blank][:3]
    lines.loc[adjustment, "Quantity"] = "-" + lines.loc[adjustment, "Quantity"]
    assert len(adjustment) == 3 and not lines.loc[adjustment, "InvoiceNo"].str.startswith("C").any()
    lines.to_csv(path, index=False)
    return path, int(blank.sum())


def test_blank_customers_are_set_aside_and_counted(tmp_path):
    path, without_customer = blank_customer_export(tmp_path)
    table = load(path)
    assert table.notes["rfm.rows_without_customer"] == without_customer
    assert "(blank)" not in set(table.frame["customer_id"])


def test_blank_customer_export_runs_with_data_path_alone(tmp_path, store):
    path, without_customer = blank_customer_export(tmp_path)
    result = run_cli(
        [f"data.path={path}", f"mlflow.tracking_uri={store}", "plots.enabled=false"], tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    job = next(r for r in runs if r.data.tags.get("segexp.kind") == "job")
    assert job.info.status == "FINISHED"
    assert job.data.metrics["rfm.rows_without_customer"] == without_customer


def test_rfm_rules_apply_to_a_log_found_by_kind_auto(tmp_path):
    path = tables.invoice_lines(tmp_path)
    lines = pd.read_csv(path, dtype=str, keep_default_na=False)
    customer = lines.index[lines["CustomerID"] != ""][0]
    lines.loc[customer, "Quantity"] = "-" + lines.loc[customer, "Quantity"]
    lines.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"data\.rfm\.cancel_prefix=null"):
        load(path)
    table = load(path, **{"rfm.cancel_prefix": None})  # the hint works as it says
    assert table.notes["rfm.return_rows"] > 0


# ------------------------------------------------------------------ hints name keys that exist

DATA_LAYER = PROJECT_DIR / "src" / "segexp" / "data"
KEY = re.compile(r"(?<![\w.])((?:data|preprocess|features)(?:\.[a-z_]+)+)(?:=('[^']*'|[\w.-]+))?")
# messages about customer tables (load.py, schema.py) are never given for a transaction log
LOG_MODULES = ("read.py", "rfm.py", "__init__.py")


def mentioned_keys() -> dict[tuple[str, str], set[str]]:
    """{(key, value or ""): modules} for every config key the data layer's strings name."""
    found: dict[tuple[str, str | None], set[str]] = {}
    for module in sorted(DATA_LAYER.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for key, value in KEY.findall(node.value):
                    found.setdefault((key, value), set()).add(module.name)
    return found


def test_the_scan_finds_the_hints_it_checks():
    keys = {key for key, _ in mentioned_keys()}
    assert {"data.rfm.cancel_prefix", "data.encoding", "data.decimal", "data.id_column"} <= keys


@pytest.mark.parametrize("option", DATA_OPTIONS)
def test_every_key_named_in_a_data_message_exists(option):
    missing, refused = [], []
    with initialize_config_module("segexp.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"data={option}"])
        for (key, value), modules in sorted(mentioned_keys().items()):
            if option == "transactions_sample" and not set(modules) & set(LOG_MODULES):
                continue
            if OmegaConf.select(cfg, key, default="<absent>") == "<absent>":
                missing.append(f"{key} ({', '.join(sorted(modules))})")
            elif value:
                try:  # the hint as the user would type it
                    compose("config", overrides=[f"data={option}", f"{key}={value}"])
                except Exception as exc:  # Hydra's override and composition errors
                    refused.append(f"{key}={value}: {exc}")
    assert not missing, f"data={option} has no key {missing}"
    assert not refused, refused
