"""The keys and types of segexp's configs as structured configs: each config file's defaults
list starts with its schema, so OmegaConf refuses a wrong type or an unknown key while Hydra
composes (``algo``, ``scaler`` and ``engine`` stay open). ``MISSING``: the YAML sets the key;
what a type cannot say is metadata (:func:`value`), checked by ``segexp.jobs.validation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

RUN_STATUSES = ("FINISHED", "FAILED", "RUNNING", "KILLED", "SCHEDULED")
_METRIC = "a metric name (silhouette, davies_bouldin, ...)"
_PATH = "a file path"


def value(
    default: Any = MISSING,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    choices: tuple[Any, ...] = (),
    text: str | None = None,
    pattern: str | None = None,
    mapping: bool = False,
) -> Any:
    """A field with what its type cannot say: bounds (``above``: strictly greater), a choice,
    a non-empty ``text`` (its words), a full-match ``pattern``, a ``mapping`` (or null)."""
    rules = {"low": low, "high": high, "above": above, "choices": choices, "text": text}
    rules.update(pattern=pattern, mapping=mapping or None)
    meta = {k: v for k, v in rules.items() if v not in (None, ())}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# ------------------------------------------------------------------ the groups


@dataclass
class SampleConf:
    n_customers: int | None = value(None, low=2)
    seed: int = value(7, low=0)


@dataclass
class RfmConf:
    reference_date: str | None = None
    cancel_prefix: str | None = "C"
    returns: str = "subtract"  # the values are checked by segexp.data.rfm
    missing_customer: str = "drop"
    duplicates: str = "drop"
    date_format: str | None = None
    dayfirst: bool = False


@dataclass
class DeriveConf:
    days_since: bool = True
    age: bool = True
    reference_date: str | None = value(None, text="a date such as 2024-12-31")


@dataclass
class DataConf:
    """``conf/data/*.yaml``: the table, how it is read and its columns' roles."""

    name: str = value(MISSING, text="a name for the data (it names the experiment)")
    path: str | None = None
    source_name: str | None = None
    kind: str = value("customers", choices=("auto", "customers", "transactions"))
    sample: SampleConf | None = None
    id_column: Any = "auto"
    numeric: Any = "auto"
    categorical: Any = "auto"
    dates: Any = "auto"
    label_column: Any = "auto"
    default_features: str | None = None
    derive: DeriveConf = field(default_factory=DeriveConf)
    # Any: OmegaConf 2.3 cannot merge a mapping into an Optional[Dict] that is null
    value_labels: Any = value(
        None,
        mapping=True,
        text="column names with their codes' labels, such as {Channel: {1: Horeca, 2: Retail}}, "
        "or null",
    )
    aliases: dict[str, list[str]] = value(
        {}, text="column names with the file headers they go by, such as {income: [Annual Income]}"
    )
    delimiter: str | None = value(
        None,
        pattern=r".|\\t|tab",
        text="one character such as ',', ';' or '|', tab, or null (found from the file)",
    )
    encoding: str | None = None
    quotechar: str = value('"', pattern=".", text="one character such as '\"' or \"'\"")
    format: str | None = None
    decimal: str | None = value(None, choices=(".", ","))  # null: detected
    missing_values: Any = None
    non_negative: Any = "auto"
    date_format: str | None = value(None, text="a strptime format such as '%d/%m/%Y'")
    dayfirst: bool = False
    rfm: RfmConf = field(default_factory=RfmConf)  # a table found to be a transaction log


@dataclass
class FeaturesConf:
    columns: Any = MISSING  # a list of columns, all_numeric or default


@dataclass
class PreprocessConf:
    impute: str = "none"  # the values are checked by segexp.model.pipeline
    knn_neighbors: int = 5
    outliers: str = "none"
    iqr_factor: float = 1.5
    winsor_limits: list[float] = value([0.05, 0.95])
    log1p: Any = value([])  # a column or a list of them


@dataclass
class MlflowConf:
    tracking_uri: str | None = None
    experiment: str = "segexp-${data.name}"


@dataclass
class StabilityConf:
    n_resamples: int = 6
    method: str = "subsample"
    fraction: float = 0.8
    max_rows: int = 20000


@dataclass
class EvaluationConf:
    reference_space: bool = True  # the values are checked by segexp.model.evaluation
    stability: StabilityConf = field(default_factory=StabilityConf)
    ground_truth: bool = True
    k_distance: bool = True


@dataclass
class LevelsConf:
    min_difference: float = 0.3


@dataclass
class NamingConf:
    """``conf/naming/*.yaml``: its free-form parts, keyed by the user's columns, stay open."""

    levels: LevelsConf = field(default_factory=LevelsConf)
    bulk: Any = None
    default_words: Any = None
    columns: Any = None
    max_name_parts: int = 3  # the values are checked by segexp.insight.naming
    name_from: str = "features"
    separator: str = ", "
    qualifier_format: str = "{name} ({qualifier})"
    relative_words: Any = None
    relative_min_gap: float = 0.25
    size_format: str = "{n} customers"
    rate_format: str = "{rate} vs {overall} overall"
    list_format: str = "{items} and {last}"
    gender: Any = None
    noise: Any = None
    roles: Any = None
    generic_action: str | None = None
    default_actions: Any = None
    action_format: str = "{action} ({trigger})"
    max_actions: int = 4
    meanings: Any = None
    words: Any = None
    archetypes: Any = None


# --------------------------------------------------------- the main config


@dataclass
class MetricsConf:
    silhouette_max_rows: int = value(low=2)


@dataclass
class LimitsConf:
    max_rows_quadratic: int = value(low=1)
    threads: int | None = value(low=1)
    single_thread_below_rows: int = value(low=0)
    max_jobs: int = value(low=1)
    max_neighbour_memory_mb: float = value(above=0)


@dataclass
class PlotsConf:
    enabled: bool = MISSING
    dpi: int = value(low=20, high=1200)
    max_points: int = value(low=100)


@dataclass
class ArtifactsConf:
    assignments_parquet_above_rows: int = value(low=0)


@dataclass
class ObjectiveConf:
    metric: str = value(text=_METRIC)
    direction: str = value(choices=("maximize", "minimize"))


@dataclass
class Config:
    """``conf/config.yaml``: one job; ``k`` >= 1 for an algo without ``${k}`` (DBSCAN)."""

    data: DataConf = field(default_factory=DataConf)
    features: FeaturesConf = field(default_factory=FeaturesConf)
    preprocess: PreprocessConf = field(default_factory=PreprocessConf)
    scaler: Any = None
    algo: Any = None
    engine: Any = None
    mlflow: MlflowConf = field(default_factory=MlflowConf)
    evaluation: EvaluationConf = field(default_factory=EvaluationConf)
    naming: NamingConf = field(default_factory=NamingConf)
    k: int = value(low=2)
    seed: int = value(low=0, high=2**32 - 1)
    metrics: MetricsConf = field(default_factory=MetricsConf)
    limits: LimitsConf = field(default_factory=LimitsConf)
    plots: PlotsConf = field(default_factory=PlotsConf)
    artifacts: ArtifactsConf = field(default_factory=ArtifactsConf)
    objective: ObjectiveConf = field(default_factory=ObjectiveConf)
    verbose: bool = MISSING


# ----------------------------------------------------------------- the tools


@dataclass
class FilterConf:
    algo: Any = None  # a name, a list of names, or null
    features: Any = None
    scaler: Any = None
    min_segment_share: float | None = value(low=0, high=1)
    min_stability: float | None = value(low=-1, high=1)
    k_min: int | None = value(low=1)
    k_max: int | None = value(low=1)
    status: str | None = value(choices=RUN_STATUSES)
    max_noise_fraction: float | None = value(low=0, high=1)


@dataclass
class RegistryConf:
    name: str = value(text="a registered model name")
    alias: str = value(text="a model alias")


@dataclass
class CompareConf:
    data: DataConf = field(default_factory=DataConf)
    mlflow: MlflowConf = field(default_factory=MlflowConf)
    scope: str = value(choices=("sweep", "experiment"))
    sweep_id: str | None = value(text="a sweep id or its parent run id")
    allow_incomplete: bool = MISSING
    metric: str = value(text=_METRIC)
    direction: str = value(choices=("auto", "max", "min"))
    filter: FilterConf = field(default_factory=FilterConf)
    top: int | None = value(low=1)
    columns: list[str] = MISSING
    format: str | None = value(choices=("table", "csv", "markdown"))
    width: int | None = value(low=20)
    wide: bool = MISSING
    output: str | None = value(text=_PATH)
    overwrite: bool = MISSING


@dataclass
class ValidationConf:
    min_agreement: float = value(low=0, high=1)


@dataclass
class PromoteReportConf:
    enabled: bool = MISSING
    output: str | None = value(text=_PATH)


@dataclass
class PromoteConf:
    data: DataConf = field(default_factory=DataConf)
    mlflow: MlflowConf = field(default_factory=MlflowConf)
    run_id: str | None = value(text="a run id")
    best: str | None = value(text="a metric name")
    scope: str = value(choices=("sweep", "experiment"))
    sweep_id: str | None = value(text="a sweep id or its parent run id")
    allow_incomplete: bool = MISSING
    direction: str = value(choices=("auto", "max", "min"))
    filter: FilterConf = field(default_factory=FilterConf)
    registry: RegistryConf = field(default_factory=RegistryConf)
    validation: ValidationConf = field(default_factory=ValidationConf)
    report: PromoteReportConf = field(default_factory=PromoteReportConf)
    allow_small_segments: bool = MISSING
    dry_run: bool = MISSING


@dataclass
class PredictConf:
    mlflow: MlflowConf = field(default_factory=MlflowConf)
    input: str | None = value(text=_PATH)
    output: str | None = value(text=_PATH)
    model: str | None = value(text="an MLflow model URI")
    registry: RegistryConf = field(default_factory=RegistryConf)
    rejects: str | None = value(text=_PATH)
    delimiter: str | None = value(text="a delimiter such as , ; or |")
    encoding: str | None = value(text="an encoding such as utf-8")
    overwrite: bool = MISSING
    escape_formulas: bool = MISSING


@dataclass
class ReportFilterConf:
    max_noise_fraction: float | None = value(low=0, high=1)


@dataclass
class ReportConf:
    mlflow: MlflowConf = field(default_factory=MlflowConf)
    naming: NamingConf = field(default_factory=NamingConf)
    run_id: str | None = value(text="a run id")
    registry: RegistryConf = field(default_factory=RegistryConf)
    metric: str = value(text=_METRIC)
    filter: ReportFilterConf = field(default_factory=ReportFilterConf)
    output: str | None = value(text=_PATH)
    overwrite: bool = MISSING
    log_to_mlflow: bool = MISSING


@dataclass
class EdaSectionConf:
    hue: str | None = MISSING
    max_hue_levels: int = value(low=2)
    max_columns: int = value(low=1)
    iqr_factor: float = value(low=0)
    max_scatter_rows: int = value(low=2)
    max_scatter_columns: int = value(low=2)
    max_pie_levels: int = value(low=1)


@dataclass
class EdaPlotsConf:
    dpi: int = value(low=20, high=1200)


@dataclass
class EdaConf:
    data: DataConf = field(default_factory=DataConf)
    mlflow: MlflowConf = field(default_factory=MlflowConf)
    eda: EdaSectionConf = field(default_factory=EdaSectionConf)
    plots: EdaPlotsConf = field(default_factory=EdaPlotsConf)
    output: str | None = value(text=_PATH)  # a folder for the figures; null: MLflow only
    overwrite: bool = MISSING


@dataclass
class RerunConf:
    mlflow: MlflowConf = field(default_factory=MlflowConf)
    run_id: str | None = value(text="a run id")


SCHEMAS = {
    "config": Config,
    "compare": CompareConf,
    "promote": PromoteConf,
    "predict": PredictConf,
    "report": ReportConf,
    "eda": EdaConf,
    "rerun": RerunConf,
}


def register() -> None:
    """Each config's schema in Hydra's ConfigStore as ``<config>_schema``."""
    store = ConfigStore.instance()
    for config_name, schema in SCHEMAS.items():
        store.store(name=f"{config_name}_schema", node=schema)
