"""Contact sheet of every plot kind segexp draws, from the built-in Mall sample.

    python docs/make_contact_sheet.py                 # writes docs/contact-sheet.png
    python docs/make_contact_sheet.py --keep /tmp/plots  # also each plot as its own PNG

Each figure comes from a real fit made the way a job makes it, without MLflow: the
packaged Hydra config composed with the job's overrides (``describe_job`` names the
run), ``fit_segmentation`` and ``score_segmentation`` on the customers of
``generate_mall_sample``, ``compute_profile`` for names and profiles, a k-means sweep
over k = 2..9 (and one over k = 2..4 that stops too early) with the gap statistic for
``select_k``, and ``eps_evidence`` for the
DBSCAN k-distance curve. The plots are drawn by the same functions and at the same
``plots.dpi`` as a run's figures; the sheet shows them as captioned thumbnails.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread

import segexp
from segexp.data.samples import generate_mall_sample
from segexp.insight import plots, profiles
from segexp.jobs.job import describe_job
from segexp.model.evaluation import eps_evidence
from segexp.model.metrics import score_segmentation
from segexp.model.pipeline import fit_segmentation
from segexp.model.selection import gap_statistic, select_k

CONF_DIR = Path(segexp.__file__).resolve().parent / "conf"
SHEET = Path(__file__).resolve().parent / "contact-sheet.png"
COLUMNS = 3
TILE_WIDTH = 4.4  # inches per thumbnail on the sheet
SHEET_DPI = 110
SWEEP_KS = range(2, 10)
SHORT_KS = range(2, 5)


def _config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def run(frame: pd.DataFrame, overrides: list[str]) -> dict:
    """One job's fit, scores and profile, as ``segexp.jobs.job`` computes them."""
    cfg = _config(overrides)
    spec = describe_job(cfg)
    fitted = fit_segmentation(frame, spec.columns, [], cfg.preprocess, cfg.scaler, cfg.algo)
    scores = score_segmentation(fitted.transformed, fitted.labels, seed=spec.seed)
    rows = frame.iloc[fitted.kept_rows]
    profile = profiles.compute_profile(rows, fitted.labels, spec.columns, cfg.naming)
    return {"cfg": cfg, "spec": spec, "fitted": fitted, "scores": scores, "profile": profile}


def sweep(frame: pd.DataFrame, features: str, ks: range) -> tuple[pd.DataFrame, str]:
    """A k-means sweep's rows (one per k, with the gap statistic) and its group label."""
    rows = []
    for k in ks:
        job = run(frame, ["algo=kmeans", f"k={k}", f"features={features}"])
        rows.append({"k": k, **job["scores"].values})
    points = job["fitted"].transformed
    gap = gap_statistic(points, ks, n_references=8, seed=42)
    table = pd.DataFrame(rows).merge(gap[["k", "gap", "gap_sk"]], on="k")
    return table, f"kmeans / standard / {features}"


def figures(frame: pd.DataFrame) -> dict[str, Figure]:
    """Plot kind -> its figure, drawn from real fits of the sample."""
    two = run(frame, ["algo=kmeans", "k=5", "features=income_spending"])
    three = run(frame, ["algo=kmeans", "k=6", "features=age_income_spending"])
    dbscan = run(frame, ["algo=dbscan", "algo.eps=0.25", "features=income_spending"])
    table, group = sweep(frame, "income_spending", SWEEP_KS)
    selection = select_k(table)
    # a sweep that stops before the data's k: the gap rule finds none, and says so
    short, short_group = sweep(frame, "age_spending", SHORT_KS)

    def scatter(job: dict) -> Figure:
        fitted = job["fitted"]
        names = profiles.segment_names(job["profile"])
        return plots.segments_scatter(
            fitted.features, fitted.transformed, fitted.labels, job["spec"].run_name, names
        )

    scores = two["scores"]
    _, _, k_distance = eps_evidence(dbscan["fitted"], dbscan["spec"].run_name)
    assert k_distance is not None
    return {
        "segments scatter (two features)": scatter(two),
        "segments scatter (PCA of three features)": scatter(three),
        "segments scatter (DBSCAN, with noise)": scatter(dbscan),
        "silhouette diagram": plots.silhouette_diagram(
            scores.silhouette_per_customer,
            scores.silhouette_labels,
            two["spec"].run_name,
            names=profiles.segment_names(two["profile"]),
        ),
        "profile heatmap": profiles.profile_heatmap(two["profile"]),
        "snake plot": profiles.snake_plot(two["profile"]),
        "elbow (inertia vs k)": plots.metric_vs_k(
            table, "inertia", f"elbow: {group}", marks=selection
        ),
        "silhouette vs k": plots.metric_vs_k(
            table, "silhouette", f"silhouette vs k: {group}", marks=selection
        ),
        "silhouette vs k (a sweep over k = 2..4 only)": plots.metric_vs_k(
            short, "silhouette", f"silhouette vs k: {short_group}", marks=select_k(short)
        ),
        "k-distance (DBSCAN eps)": plots.k_distance_figure(**k_distance),
    }


def png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def contact_sheet(images: dict[str, np.ndarray]) -> Figure:
    """The images as a grid of thumbnails, each captioned with its plot kind."""
    caption, pad = 0.32, 0.15  # inches
    rows = -(-len(images) // COLUMNS)
    items = list(images.items())
    heights = [
        max(TILE_WIDTH * img.shape[0] / img.shape[1] for _, img in items[r * COLUMNS :][:COLUMNS])
        for r in range(rows)
    ]
    width = COLUMNS * (TILE_WIDTH + pad) + pad
    height = sum(heights) + rows * (caption + pad) + pad + 0.5
    sheet = Figure(figsize=(width, height), facecolor="white")
    FigureCanvasAgg(sheet)
    sheet.text(
        0.5,
        1 - 0.12 / height,
        "segexp plots: every kind, from the built-in sample",
        ha="center",
        va="top",
        fontsize=14,
        weight="bold",
    )
    top = height - 0.5
    for r in range(rows):
        for c, (kind, image) in enumerate(items[r * COLUMNS : (r + 1) * COLUMNS]):
            tile_height = TILE_WIDTH * image.shape[0] / image.shape[1]
            x = pad + c * (TILE_WIDTH + pad)
            y = top - caption - tile_height
            ax = sheet.add_axes((x / width, y / height, TILE_WIDTH / width, tile_height / height))
            ax.imshow(image, interpolation="antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("#bbbbbb")
            sheet.text((x + 0.02) / width, (top - 0.05) / height, kind, va="top", fontsize=11)
        top -= heights[r] + caption + pad
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHEET, help="the contact sheet PNG")
    parser.add_argument("--keep", type=Path, help="also write each plot as its own PNG here")
    args = parser.parse_args()
    dpi = int(_config([]).plots.dpi)
    frame = generate_mall_sample()
    drawn = figures(frame)
    images = {}
    for kind, fig in drawn.items():
        started = time.perf_counter()
        data = png(fig, dpi)
        seconds = time.perf_counter() - started
        image = imread(io.BytesIO(data))
        print(
            f"{kind:45s} {image.shape[1]} x {image.shape[0]} px, drawn in {seconds * 1000:.0f} ms"
        )
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            name = "".join(ch if ch.isalnum() else "-" for ch in kind).strip("-")
            (args.keep / f"{name}.png").write_bytes(data)
        images[kind] = image
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(images).savefig(args.out, dpi=SHEET_DPI)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
