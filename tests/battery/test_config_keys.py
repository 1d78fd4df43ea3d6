"""Battery: bad configuration keys, values and sweeps (issue 12, points 1 and 4).

Each case is one command a careless user types; it must answer with one
``segexp: error: <key>: <what is allowed>; got <value>`` line and exit 2, before
any run, parent run, store file or Hydra output folder exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.battery.harness import case

CENTRES = [(55, 50), (88, 17), (86, 82), (26, 79), (26, 20)]  # as benchmarks/dbscan_memory.py


def dense_customers(folder: Path) -> None:
    """100k clustered customers x (income, spending): DBSCAN eps 0.3 would hold ~8 GB."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 100_000
    which = rng.choice(len(CENTRES), size=n, p=[0.4, 0.18, 0.2, 0.11, 0.11])
    values = np.clip(np.asarray(CENTRES, float)[which] + rng.normal(0, 7, (n, 2)), 1, 140)
    rows = np.column_stack([np.arange(1, n + 1), values.round(1)])
    np.savetxt(
        folder / "dense.csv",
        rows,
        fmt=["%d", "%.1f", "%.1f"],
        delimiter=",",
        header="CustomerID,Annual Income (k$),Spending Score (1-100)",
        comments="",
    )


def user_data_file_with_a_typo(folder: Path) -> None:
    """The user's own data option (``conf/data/bank.yaml``) with ``id_colum`` for id_column."""
    (folder / "conf" / "data").mkdir(parents=True)
    (folder / "conf" / "data" / "bank.yaml").write_text("name: bank\nid_colum: cust\n")


MAIN = [
    # the issue's own cases
    case("eps-negative", "algo=dbscan algo.eps=-1", "algo.eps", "(0.0, inf)", "got -1", "DBSCAN"),
    case("min-samples-zero", "algo=dbscan algo.min_samples=0", "algo.min_samples", "got 0"),
    case("seed-abc", "seed=abc", "seed:", "integer", "'abc'"),
    case("dpi-zero", "plots.dpi=0", "plots.dpi", "integer", "got 0"),
    case("threads-abc", "limits.threads=abc", "limits.threads", "or null", "'abc'"),
    case("silhouette-rows-zero", "metrics.silhouette_max_rows=0", "silhouette_max_rows", "got 0"),
    case("add-unknown-key", "+foo=1", "foo: no such config key", "available", "seed"),
    # mlflow.log_model wrote nothing (issue 24.6): gone, and refused rather than ignored
    case("log-model-gone", "mlflow.log_model=true", "mlflow.log_model: no such config key"),
    case("delete-k", "~k", "k:", "removed", "~k"),
    # a list of options is not a sweep: Hydra merges the files; said as a list, not "removed"
    case(
        "algo-list",
        "algo=[kmeans,gmm]",
        "algo: one option per job",
        "got a list",
        "algo=[kmeans,gmm]",
        "-m algo=kmeans,gmm",
        "segexp.sweep: algo=('kmeans', 'gmm')",
    ),
    case("scaler-list-in-sweep", "-m scaler=[standard,minmax] k=3,4", "scaler:", "got a list"),
    case(
        "features-column-list",
        "features=[age,income]",
        "features: one option per job",
        "got a list, features=[age,income]",
        "to fit on these columns: features.columns=[age,income]",
    ),
    case("empty-group-option", "algo=", "algo=", "available", "kmeans"),
    case("data-nosuch", "data=nosuch", "data=nosuch", "available", "mall_sample"),
    case("unclosed-list", "k=[1,2", "k=[1,2", "cannot parse"),
    case("open-range", "k=3..", "k", "3..", "range"),
    case("sweep-max-jobs", "-m k=1..100000", "limits.max_jobs", "1000", "got 100000 jobs"),
    # more of the main config's keys
    case("k-abc", "k=abc", "k:", "integer >= 2", "'abc'"),
    case("k-one", "k=1", "k:", "integer >= 2", "got 1"),
    case("seed-negative", "seed=-1", "seed", "got -1"),
    case("seed-float", "seed=1.5", "seed", "got 1.5"),
    case("plots-enabled-word", "plots.enabled=maybe", "plots.enabled", "true or false"),
    case("dpi-huge", "plots.dpi=100000", "plots.dpi", "1200", "100000"),
    case("quadratic-zero", "limits.max_rows_quadratic=0", "limits.max_rows_quadratic", "got 0"),
    case("single-thread-text", "limits.single_thread_below_rows=x", "single_thread_below_rows"),
    case("max-jobs-zero", "limits.max_jobs=0", "limits.max_jobs", "got 0"),
    case("neighbour-mb-negative", "limits.max_neighbour_memory_mb=-5", "max_neighbour_memory_mb"),
    case("objective-direction", "objective.direction=up", "objective.direction", "minimize"),
    case("objective-metric-empty", "objective.metric=", "objective.metric", "got ''"),
    case("verbose-word", "verbose=maybe", "verbose", "true or false", "'maybe'"),
    case("limits-unknown", "+limits.foo=1", "limits.foo", "available under limits", "max_jobs"),
    case("plots-typo", "+plots.dpii=100", "plots.dpii", "did you mean plots.dpi"),
    case("delete-seed", "~seed", "seed", "removed"),
    case("sample-size-one", "data.sample.n_customers=1", "data.sample.n_customers", "got 1"),
    case("resamples-one", "evaluation.stability.n_resamples=1", "n_resamples", "got 1"),
    case("iqr-negative", "preprocess=clip_iqr preprocess.iqr_factor=-1", "iqr_factor", "-1"),
    # hyperparameters, as scikit-learn constrains them
    case("eps-text", "algo=dbscan algo.eps=abc", "algo.eps", "float", "'abc'"),
    case("min-samples-float", "algo=dbscan algo.min_samples=2.5", "algo.min_samples", "2.5"),
    case("kmeans-n-init-zero", "algo.n_init=0", "algo.n_init", "'auto'", "got 0", "KMeans"),
    case("kmeans-unknown-param", "+algo.foo=1", "algo.foo", "not a parameter", "n_init"),
    case("kmeans-param-typo", "+algo.max_iters=5", "algo.max_iters", "did you mean algo.max_iter"),
    case("gmm-covariance", "algo=gmm algo.covariance_type=fancy", "covariance_type", "'fancy'"),
    case("agglomerative-linkage", "algo=agglomerative algo.linkage=x", "algo.linkage", "ward"),
    case("birch-threshold", "algo=birch algo.threshold=-1", "algo.threshold", "got -1"),
    case("minibatch-batch", "algo=minibatch_kmeans algo.batch_size=0", "algo.batch_size"),
    case("spectral-affinity", "algo=spectral algo.affinity=x", "algo.affinity", "rbf"),
    case("target-nosuch", "algo._target_=nosuch.Clusterer", "algo._target_", "nosuch.Clusterer"),
    # sweeps: one bad job stops the whole sweep before its parent run
    case("sweep-range-fn", "-m k=range(2,2000)", "limits.max_jobs", "got 1998 jobs"),
    case("sweep-lowered-limit", "-m k=3,4,5 limits.max_jobs=2", "limits.max_jobs=3", "got 3"),
    case("sweep-product", "-m algo=kmeans,gmm k=2..600", "limits.max_jobs", "1198"),
    case("sweep-one-bad-eps", "-m algo=dbscan algo.eps=0.3,-1", "algo.eps", "job #1 of 2"),
    # refused by OmegaConf while Hydra composes the sweep's config, before any job
    case("sweep-seed-abc", "-m k=3,4 seed=abc", "seed", "integer", "'abc'"),
    case("sweep-k-one", "-m k=3,1", "k:", "got 1", "job #1"),
    case("sweep-threads", "-m k=3,4 limits.threads=abc", "limits.threads", "'abc'"),
    case("sweep-unknown-key", "-m k=3,4 +foo=1", "foo: no such config key"),
    case(
        "default-features-nosuch",
        "data.default_features=nosuch",
        "data.default_features",
        "income_spending",
        "'nosuch'",
    ),
    case(
        "rfm-date-format",
        "data=transactions_sample data.rfm.date_format=%Q",
        "data.rfm.date_format",
        "strptime",
        "'%Q'",
    ),
    case(
        "rfm-numeric-text",
        "data=transactions_sample data.numeric=abc",
        "data.numeric names column 'abc'",
        "recency",
    ),
    case("range-without-m", "k=3..8", "k=3..8", "add -m", "segexp -m k=3..8", "k=3"),
    # keys no option of a group takes, and hyperparameters of the scaler
    case("artifacts-unknown", "+artifacts.foo=1", "artifacts.foo: no such config key"),
    case("data-unknown", "+data.foo=1", "data.foo: no such config key", "id_column"),
    case("data-typo", "+data.id_colum=cust", "did you mean data.id_column"),
    case("data-sample-unknown", "+data.sample.size=5", "data.sample.size", "n_customers"),
    case("features-unknown", "+features.cols=[age]", "did you mean features.columns"),
    case("preprocess-unknown", "+preprocess.outlier=clip", "did you mean preprocess.outliers"),
    case("mlflow-unknown", "+mlflow.uri=x", "mlflow.uri: no such config key", "tracking_uri"),
    case(
        "stability-unknown",
        "+evaluation.stability.resamples=3",
        "did you mean evaluation.stability.n_resamples",
    ),
    case(
        "naming-levels-unknown",
        "+naming.levels.min_diff=0.5",
        "did you mean naming.levels.min_difference",
    ),
    case(
        "user-data-file-typo",
        "data=bank",
        "data.id_colum: no such config key",
        "did you mean data.id_column",
        setup=user_data_file_with_a_typo,
        allowed=("conf", "conf/data", "conf/data/bank.yaml"),
    ),
    case(
        "scaler-unknown-param",
        "+scaler.foo=1",
        "scaler.foo: not a parameter of scikit-learn's StandardScaler",
        "with_mean",
    ),
    case("scaler-bad-value", "+scaler.with_mean=maybe", "scaler.with_mean", "bool", "'maybe'"),
    case(
        "scaler-range-reversed",
        "scaler=minmax +scaler.feature_range=[10,0]",
        "scaler: Minimum of desired feature range must be smaller than maximum",
        "MinMaxScaler",
    ),
    case("scaler-target-function", "scaler._target_=os.getcwd", "os.getcwd", "not a class"),
    case(
        "target-not-scikit-learn",
        "algo._target_=subprocess.Popen",
        "algo.n_clusters: not a parameter of subprocess.Popen",
    ),
    case(
        "spark-master-unreachable",
        "engine=spark engine.master=spark://127.0.0.1:1",
        "engine.master=spark://127.0.0.1:1: no Spark master answers",
        "refused",
        "local[*]",
    ),
    case(
        "spark-master",
        "engine=spark engine.master=bogus",
        "engine.master",
        "spark://host:7077",
        "'bogus'",
    ),
    # density algorithms' memory
    case(
        "dbscan-neighbour-memory",
        "algo=dbscan data.path={dir}/dense.csv plots.enabled=false",
        "max_neighbour_memory_mb",
        "MB",
        "algo.eps",
        "algo=kmeans",
        setup=dense_customers,
        allowed=("dense.csv",),
    ),
]

TOOLS = [
    case("compare-top-zero", "top=0", "top:", "integer >= 1", "got 0", module="segexp.compare"),
    case("compare-unknown", "+foo=1", "foo: no such config key", "metric", module="segexp.compare"),
    case("compare-k-min", "filter.k_min=abc", "filter.k_min", "'abc'", module="segexp.compare"),
    case("compare-scope", "scope=all", "scope", "experiment", "'all'", module="segexp.compare"),
    case("compare-format", "format=xml", "format", "markdown", "'xml'", module="segexp.compare"),
    case("compare-width", "width=5", "width", "got 5", module="segexp.compare"),
    case(
        "compare-filter-typo",
        "+filter.algos=x",
        "filter.algos",
        "did you mean filter.algo",
        module="segexp.compare",
    ),
    case(
        "compare-status", "filter.status=DONE", "filter.status", "FINISHED", module="segexp.compare"
    ),
    case("compare-data-nosuch", "data=nosuch", "data=nosuch", "available", module="segexp.compare"),
    case(
        "predict-registry-empty",
        "registry.name=",
        "registry.name",
        "got ''",
        module="segexp.predict",
    ),
    case("predict-unknown", "+foo=1", "foo: no such config key", "input", module="segexp.predict"),
    case(
        "promote-agreement",
        "validation.min_agreement=2",
        "min_agreement",
        "got 2",
        module="segexp.promote",
    ),
    case("promote-dry-run", "dry_run=maybe", "dry_run", "true or false", module="segexp.promote"),
    case(
        "promote-noise",
        "filter.max_noise_fraction=1.5",
        "max_noise_fraction",
        "1.5",
        module="segexp.promote",
    ),
    case("promote-parse", "run_id=[1,2", "cannot parse", module="segexp.promote"),
    case(
        "report-log-flag", "log_to_mlflow=maybe", "log_to_mlflow", "'maybe'", module="segexp.report"
    ),
    case(
        "report-noise",
        "filter.max_noise_fraction=-0.1",
        "max_noise_fraction",
        "-0.1",
        module="segexp.report",
    ),
    case("eda-max-columns", "eda.max_columns=0", "eda.max_columns", "got 0", module="segexp.eda"),
    case("eda-dpi", "plots.dpi=0", "plots.dpi", "got 0", module="segexp.eda"),
    case("eda-iqr", "eda.iqr_factor=-1", "eda.iqr_factor", "got -1", module="segexp.eda"),
    case("rerun-run-id-flag", "run_id=true", "run_id", "got true", module="segexp.rerun"),
    case("rerun-unknown", "+foo=1", "foo: no such config key", "run_id", module="segexp.rerun"),
    case(
        "rerun-a-sweep-run",
        "mlflow.tracking_uri={store} run_id={parent_run_id}",
        "is a sweep run, not a job",
        "re-run one of its job runs",
        module="segexp.rerun",
        seeded=True,
    ),
    case(
        "promote-a-sweep-run",
        "mlflow.tracking_uri={store} run_id={parent_run_id}",
        "is a sweep run, not a segmentation",
        module="segexp.promote",
        seeded=True,
    ),
    case(
        "compare-unknown-column",
        "mlflow.tracking_uri={store} columns=[inertai]",
        "no leaderboard column 'inertai'",
        "did you mean inertia",
        module="segexp.compare",
        seeded=True,
    ),
]


@pytest.mark.parametrize("c", MAIN + TOOLS, ids=lambda c: c.id)
def test_bad_config_is_one_line_error(battery, c):
    battery(c)
