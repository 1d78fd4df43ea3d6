"""Names other tools rely on: tag prefixes, run kinds, artifact paths.

compare, promote, predict and report read what a sweep writes through these
names; the README documents them as a public contract.
"""

VERSION = "0.1.0"  # segexp's version (pyproject.toml says the same)

TAG_PREFIX = "segexp."
TAG_KIND = TAG_PREFIX + "kind"  # "job", "sweep" or "eda"
TAG_SWEEP_ID = TAG_PREFIX + "sweep_id"
TAG_DATA_FINGERPRINT = TAG_PREFIX + "data_fingerprint"
TAG_DATA_SOURCE = TAG_PREFIX + "data_source"
TAG_CODE_VERSION = TAG_PREFIX + "code_version"
TAG_ERROR = TAG_PREFIX + "error"
TAG_UNDEFINED_PREFIX = TAG_PREFIX + "undefined."
TAG_JOB_NUM = TAG_PREFIX + "job_num"
# The BLAS/OpenMP threads the job's fit ran with (segexp.jobs.threads).
TAG_FIT_THREADS = TAG_PREFIX + "fit_threads"
# + a job number: on a sweep's parent run, the outcome of a job that logged no run of its own
TAG_OUTCOME_PREFIX = TAG_PREFIX + "outcome."

MODEL_DIR = "model"
# The fitted pipeline, stored with skops (segexp.model.storage): it loads without running code.
PIPELINE_FILE = "pipeline.skops"
# What segexp before skops storage wrote instead: a pickle, never loaded unless trusted.
LEGACY_PIPELINE_FILE = "pipeline.joblib"
MODEL_META_FILE = "meta.json"
ASSIGNMENTS_FILE = "assignments.csv"
# ... and above artifacts.assignments_parquet_above_rows customers (segexp.tracking.assignments)
ASSIGNMENTS_PARQUET = "assignments.parquet"
CONFIG_FILE = "config.yaml"
LEADERBOARD_FILE = "leaderboard.csv"
# On a sweep's parent run: the sweep's config (Hydra's multirun.yaml, kept in the store
# rather than in the sweep folder).
MULTIRUN_FILE = "multirun.yaml"

# Segment id of customers an algorithm leaves unassigned (DBSCAN noise).
NOISE_LABEL = -1

# preprocess.impute choices: how missing feature cells are handled (data checks and pipeline).
IMPUTE_CHOICES = ("none", "drop", "median", "mean", "most_frequent", "knn")
