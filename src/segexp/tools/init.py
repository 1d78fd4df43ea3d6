"""``segexp init [FOLDER] [data.path=FILE] [data.name=NAME]``: a starter project, written
into FOLDER without ever replacing a file."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from segexp.errors import EXIT_USER_ERROR, ConfigError, SegexpError

HELP = """segexp init: write a starter project (conf/data, conf/algo, .gitignore, next steps).
Examples:
  segexp init my-project data.path=customers.csv   conf/data/customers.yaml from the file
  segexp init . data.path=log.csv data.name=shop   a transaction log, named shop
  segexp init                                      a commented template (built-in sample)

Keys (key=value on the command line; the default shown):
  FOLDER=.          where the project goes (created if missing)
  data.path=null    your customer table (CSV, TSV, Parquet): its column roles are inferred
  data.name=null    the data option's name (null: the file's name, else my_data)
Existing files are never replaced: they are kept and named in the output."""
KEYS = ("data.path", "data.name")

GITIGNORE = """# segexp's local MLflow store (runs, models, artifacts) and Hydra's sweep folders
mlflow.db
mlruns/
multirun/
outputs/
eda-*/
"""

ALGO_EXAMPLE = """# An algorithm of your own: an estimator with fit and predict (or fit_predict).
# Every file here is one more option of the algo group:
#   segexp algo=my_kmeans
#   segexp -m algo=kmeans,my_kmeans k=3..6
_target_: sklearn.cluster.KMeans
n_clusters: ${k}      # the number of segments: k=... on the command line
n_init: 3             # fewer restarts than segexp's kmeans (10): faster, a little less stable
random_state: ${seed}
"""

TEMPLATE = """# conf/data/{name}.yaml: a template written by `segexp init`. Set path to your table,
# then: segexp data={name}. Everything not set here comes from segexp's data/mall_sample.
defaults:
  - mall_sample
  - _self_

name: {name}                # the MLflow experiment is segexp-{name}
path: null                  # your file (CSV, TSV, Parquet); null: the built-in mall sample
# Column roles: auto infers them (printed before each run); set one to correct it.
id_column: auto             # a column name, or null (rows are numbered)
numeric: auto               # a list of columns, e.g. [age, income]
categorical: auto           # e.g. [gender, region]
dates: auto
label_column: auto          # a column holding a known segment (ARI/NMI), or null
"""


def _yaml_scalar(value: str | None) -> str:
    return OmegaConf.to_yaml({"x": value}).split(":", 1)[1].strip()


def _yaml_list(names: Sequence[str]) -> str:
    return "[" + ", ".join(map(_yaml_scalar, names)) + "]"


def data_config(name: str, path: str, shown_path: str) -> str:
    """conf/data/<name>.yaml for the table at ``path``: its inferred column roles, written out
    (a transaction log: its log settings, the RFM features segexp builds from it)."""
    # measured start-up cost: `segexp --help` imports this module; pandas only loads here
    from segexp.data import features, load_customers

    table = load_customers({**(features.config_option("data", "mall_sample") or {}), "path": path})
    rows = f"{len(table.frame)} customers"
    if any(key.startswith("rfm.") for key in table.tags):
        return (
            f"# conf/data/{name}.yaml: written by `segexp init` from a transaction log ({rows}).\n"
            "# Its RFM features and reading settings come from segexp's data/transactions_sample.\n"
            f"defaults:\n  - transactions_sample\n  - _self_\n\nname: {name}\n"
            f"path: {_yaml_scalar(shown_path)}\n"
        )
    schema = table.schema
    assert schema is not None  # a customer table read from a file has one
    excluded = "; ".join(f"{c.column} ({c.reason})" for c in schema.columns if c.role == "excluded")
    return (
        f"# conf/data/{name}.yaml: written by `segexp init` from {shown_path}\n"
        f"# ({rows}, {len(schema.columns)} columns). The column roles are the ones segexp\n"
        "# inferred: edit a list to change them (auto: infer again). Reading settings\n"
        "# (delimiter, missing values, ...) come from segexp's data/mall_sample.\n"
        "defaults:\n  - mall_sample\n  - _self_\n\n"
        f"name: {name}  # the MLflow experiment is segexp-{name}\n"
        f"path: {_yaml_scalar(shown_path)}\n"
        f"id_column: {_yaml_scalar(schema.id_column)}\n"
        f"numeric: {_yaml_list(schema.numeric)}\n"
        f"categorical: {_yaml_list(schema.categorical)}\n"
        f"dates: {_yaml_list(schema.dates)}\n"
        f"label_column: {_yaml_scalar(schema.label_column)}\n"
        + (f"# left out: {excluded}\n" if excluded else "")
    )


def next_steps(name: str, folder: str) -> str:
    commands = [
        (f"cd {folder}", "") if folder != "." else ("", ""),
        (f"segexp-eda data={name}", f"look at the data (figures in eda-{name}/)"),
        (f"segexp data={name}", "one segmentation (kmeans, k=5)"),
        (f"segexp -m data={name} algo=kmeans,gmm k=3..8", "a sweep: 12 runs"),
        (f"segexp-compare data={name}", "the sweep's runs, ranked"),
        (f"segexp-promote data={name} best=silhouette", "register the best as champion"),
        ("segexp-report", "the champion's HTML report"),
        ("mlflow ui --backend-store-uri sqlite:///mlflow.db", "browse the runs"),
    ]
    pad = max(len(c) for c, _ in commands) + 2
    lines = [(f"{c:<{pad}}# {why}" if why else c) for c, why in commands if c]
    return (
        "# Next steps\n\n```\n" + "\n".join(lines) + "\n```\n\n"
        f"Edit conf/data/{name}.yaml to change a column's role; add algorithms under\n"
        "conf/algo/. `segexp --help` lists every key.\n"
    )


def parse_args(args: Sequence[str]) -> tuple[str, dict[str, str]]:
    folder, values = ".", {}
    for word in args:
        key, equals, value = word.partition("=")
        if not equals:
            if folder != ".":
                raise ConfigError(f"{word}: one FOLDER only (got {folder} already)")
            folder = word
        elif key in KEYS:
            values[key] = value
        else:
            raise ConfigError(f"{key}: no such key for segexp init; available: {', '.join(KEYS)}")
    return folder, values


def init(args: Sequence[str]) -> str:
    """Write the starter files; returns what to print. SegexpError before anything is written."""
    folder_text, values = parse_args(args)
    folder = Path(folder_text).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder_text}: not a folder; name a folder for the project")
    path = values.get("data.path") or None
    stem = Path(path).stem if path else "my_data"
    name = values.get("data.name") or re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_").lower()
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name or ""):
        raise ConfigError(f"data.name: letters, digits, _ . - only; got {name!r}")
    if path:
        absolute, root = Path(path).expanduser().resolve(), folder.resolve()
        # inside the project: relative to it, so the folder can move
        shown = str(absolute.relative_to(root) if absolute.is_relative_to(root) else absolute)
        data_text = data_config(name, str(absolute), shown)  # reads the file: errors first
    else:
        data_text = TEMPLATE.format(name=name)
    steps = next_steps(name, folder_text)
    files: dict[str, str] = {
        f"conf/data/{name}.yaml": data_text,
        "conf/algo/my_kmeans.yaml": ALGO_EXAMPLE,
        ".gitignore": GITIGNORE,
        "next-steps.md": steps,
    }
    lines = []
    for relative, text in files.items():
        target = folder / relative
        if target.exists() or target.is_symlink():
            lines.append(f"  kept   {target} (it exists; segexp init never replaces a file)")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8") as handle:
            handle.write(text)
        lines.append(f"  wrote  {target}")
    return "\n".join([f"segexp init: a starter project in {folder}", *lines, "", steps.rstrip()])


def main(argv: Sequence[str] | None = None) -> int:
    """``segexp init ...``: 0 written, 2 bad input (one error line, nothing written)."""
    args = list(sys.argv[2:] if argv is None else argv)
    if any(a in ("--help", "-h", "help") for a in args):
        print(HELP)
        return 0
    try:
        print(init(args))
    except SegexpError as exc:
        print(f"segexp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `segexp init | head`: the files are written; the reader left
        return 0
    except OSError as exc:
        print(f"segexp: error: segexp init: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0
