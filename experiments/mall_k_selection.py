"""Study: how many segments, and which configuration, for the Kaggle Mall Customers table.

    python experiments/mall_k_selection.py [path/to/Mall_Customers.csv]

Fits every configuration with segexp's own pieces (pipeline.fit_configured,
metrics.score_segmentation, evaluation.evaluate_run), picks k per group with
selection.select_k (plus the gap statistic for k-means), and ranks the
configurations with leaderboard.build_leaderboard: the numbers a sweep logs to
MLflow and ``python -m segexp.compare`` ranks. Prints Markdown for
experiments/mall_k_selection.md. Takes about a minute on 2 cores.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from threadpoolctl import threadpool_limits

from segexp.data import load_customers
from segexp.model.evaluation import evaluate_run
from segexp.model.metrics import mixture_criteria, score_segmentation
from segexp.model.pipeline import fit_configured
from segexp.model.selection import CONSENSUS, gap_statistic, select_k
from segexp.tracking.leaderboard import (
    LeaderboardFilters,
    build_leaderboard,
    display_columns,
    format_markdown,
    select_best,
)

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEFAULT_CSV = PROJECT_DIR.parent / "shared" / "data" / "Mall_Customers.csv"
K_RANGE = range(2, 11)
ALGOS = ("kmeans", "gmm", "agglomerative")
SCALERS = ("none", "standard", "minmax")
FEATURES = ("income_spending", "age_income_spending")
CRITERIA = ("elbow", "silhouette", "calinski_harabasz", "davies_bouldin", "bic", "gap")


def compose_job(csv: Path, algo: str, scaler: str, features: str, k: int):
    overrides = [
        f"data.path={csv}",
        "data.label_column=null",
        f"algo={algo}",
        f"scaler={scaler}",
        f"features={features}",
        f"k={k}",
    ]
    with initialize_config_dir(config_dir=str(PROJECT_DIR / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def run_one(csv: Path, algo: str, scaler: str, features: str, k: int) -> dict:
    """One job's metrics as a leaderboard row (the names a run logs)."""
    cfg = compose_job(csv, algo, scaler, features, k)
    table = load_customers(cfg.data)
    fitted = fit_configured(table.frame, cfg)
    scores = score_segmentation(fitted.transformed, fitted.labels, seed=int(cfg.seed))
    row = {
        "run_name": f"{algo}-k{k}-{scaler}-{features}",
        "status": "FINISHED",
        "algo": algo,
        "k": k,
        "scaler": scaler,
        "features": features,
        "run_id": f"study-{algo}-{k}-{scaler}-{features}",
        **scores.values,
        **mixture_criteria(fitted.pipeline[-1], fitted.transformed),
    }
    evaluation = evaluate_run(table, fitted, cfg, figures=False)
    row.update(evaluation.values)
    row["_transformed"] = fitted.transformed
    return row


def markdown(frame: pd.DataFrame) -> str:
    return format_markdown(frame.infer_objects())


def main(csv: Path) -> None:
    started = time.perf_counter()
    rows = []
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for algo in ALGOS:
            for scaler in SCALERS:
                for features in FEATURES:
                    for k in K_RANGE:
                        rows.append(run_one(csv, algo, scaler, features, k))
        frame = pd.DataFrame(rows)

        print("## 1. How many segments: k per criterion, per sweep group\n")
        picks = []
        for (algo, scaler, features), group in frame.groupby(["algo", "scaler", "features"]):
            group = group.sort_values("k")
            if algo == "kmeans":  # the gap statistic needs the data, not only run metrics
                points = group["_transformed"].iloc[0]
                gaps = gap_statistic(points, K_RANGE, n_references=10, seed=42)
                group = group.merge(gaps[["k", "gap", "gap_sk"]], on="k")
            selection = select_k(group.drop(columns="_transformed"))
            picks.append(
                {
                    "algo": algo,
                    "scaler": scaler,
                    "features": features,
                    **{c: selection.recommended.get(c) for c in CRITERIA},
                    CONSENSUS: selection.recommended.get(CONSENSUS),
                }
            )
        print(markdown(pd.DataFrame(picks)))

        print("\n## 2. k-means on income and spending, k = 2..10 (the issue's evidence)\n")
        for scaler in ("none", "standard"):
            group = frame[
                (frame["algo"] == "kmeans")
                & (frame["scaler"] == scaler)
                & (frame["features"] == "income_spending")
            ].sort_values("k")
            columns = ["k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin"]
            columns += ["stability", "ref_silhouette"]
            print(f"scaler={scaler}\n")
            print(markdown(group[columns]))
            print()

        board = frame.drop(columns="_transformed")
        filters = LeaderboardFilters(min_segment_share=0.05, min_stability=0.8)
        for metric in ("ref_silhouette", "silhouette"):
            ranked = build_leaderboard(board, metric, filters)
            shown = ranked.head(12)
            columns = [c for c in display_columns(shown, metric) if c != "run_id"]
            print(
                f"\n## 3. Leaderboard by {metric}: {len(ranked)} of {len(board)} configurations "
                f"pass min_segment_share>=0.05 and min_stability>=0.8 (top 12)\n"
            )
            print(markdown(shown[columns]))
        best = select_best(board, "ref_silhouette", filters)
        print(
            f"\nselect_best(metric=ref_silhouette, min_segment_share=0.05, min_stability=0.8): "
            f"{best['run_name']} (ref_silhouette {best['ref_silhouette']:.4f}, "
            f"stability {best['stability']:.4f}, silhouette {best['silhouette']:.4f})"
        )
    elapsed = time.perf_counter() - started
    print(f"\n{len(frame)} configurations fitted and evaluated in {elapsed:.0f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV)
