"""Figures a researcher would rather look at than read (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

_DPI = 120


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI, metadata={"Software": None})  # no version stamp: reproducible bytes
    plt.close(fig)


def duration_histogram(manifest: pd.DataFrame, path: Path, *, short_threshold_s: float) -> None:
    """Histogram of durations (all clips) with per-label box plots beneath it."""
    labels = sorted(manifest["label"].unique())
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), height_ratios=[1.1, 1])
    durations = manifest["duration_s"].to_numpy()
    top.hist(durations, bins=min(60, max(10, len(durations) // 10)), color="#4C72B0", edgecolor="white")
    top.axvline(short_threshold_s, color="#C44E52", linestyle="--",
                label=f"{short_threshold_s:g} s (VGGish window): {(durations < short_threshold_s).sum()} shorter")
    top.axvline(np.median(durations), color="black", linewidth=1,
                label=f"median {np.median(durations):.2f} s")
    top.set(xlabel="duration (s)", ylabel="clips", title=f"Clip durations (n={len(durations)})")
    top.legend(frameon=False)
    data = [manifest.loc[manifest["label"] == lab, "duration_s"].to_numpy() for lab in labels]
    bottom.boxplot(data, orientation="horizontal", tick_labels=labels, showfliers=True)
    bottom.axvline(short_threshold_s, color="#C44E52", linestyle="--")
    bottom.set(xlabel="duration (s)", title="Duration by label")
    _save(fig, path)


def class_balance(manifest: pd.DataFrame, path: Path, *, splits: pd.DataFrame | None = None) -> None:
    """Clips per label, stacked by split when a split table is given."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = sorted(manifest["label"].unique())
    if splits is None:
        counts = manifest["label"].value_counts().reindex(labels, fill_value=0)
        ax.bar(labels, counts.to_numpy(), color="#4C72B0")
        for x, v in enumerate(counts.to_numpy()):
            ax.text(x, v, str(v), ha="center", va="bottom", fontsize=9)
    else:
        merged = manifest[["utt_id", "label"]].merge(splits[["utt_id", "split"]], on="utt_id")
        table = pd.crosstab(merged["label"], merged["split"]).reindex(labels, fill_value=0)
        speakers = splits.groupby("split")["speaker"].nunique() if "speaker" in splits else {}
        bottom = np.zeros(len(labels))
        for name, colour in (("train", "#4C72B0"), ("validation", "#DD8452"), ("test", "#55A868")):
            if name in table:
                legend = f"{name} ({speakers[name]} speakers)" if name in speakers else name
                ax.bar(labels, table[name].to_numpy(), bottom=bottom, label=legend, color=colour)
                bottom += table[name].to_numpy()
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set(ylabel="clips", title="Class balance" if splits is None else "Class balance by split")
    ax.tick_params(axis="x", rotation=30)
    _save(fig, path)


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str], path: Path, *, title: str) -> None:
    """Counts and row-normalised recall side by side."""
    matrix = np.asarray(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.nan_to_num(matrix / matrix.sum(axis=1, keepdims=True))
    size = max(5.0, 0.55 * len(labels) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for ax, values, name, fmt in ((axes[0], matrix, "counts", "d"), (axes[1], normalised, "recall (row-normalised)", ".2f")):
        image = ax.imshow(values, cmap="Blues", vmin=0)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set(xlabel="predicted", ylabel="true", title=name)
        threshold = values.max() / 2 if values.size else 0
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > threshold else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    _save(fig, path)


def comparison(summary: dict, path: Path) -> None:
    """UAR (with the spread across folds) and macro-F1 per feature set, against chance.

    Sets are in name order, the first at the top, so that a bar keeps its row from one
    revision to the next and two images of ``dvc plots diff`` can be read side by side
    (the leaderboard ranks them).
    """
    names = sorted(summary, reverse=True)  # barh draws from the bottom: the first name at the top
    uar = np.array([summary[n]["uar"] for n in names])
    err = np.array([summary[n].get("uar_std", 0.0) for n in names])
    f1 = np.array([summary[n]["macro_f1"] for n in names])
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.55 * len(names)))
    y = np.arange(len(names))
    random = [bool(summary[n].get("random_init")) for n in names]  # plumbing checks: grey, and said so
    ax.barh(y, uar, xerr=err if err.any() else None, color=["#B0B0B0" if r else "#4C72B0" for r in random],
            capsize=3)
    ax.scatter(f1, y, color="#DD8452", zorder=3, label="macro-F1")
    for i, value in enumerate(uar):
        ax.text(value + 0.01, i, f"{value:.3f}", va="center", fontsize=9)
    if names:
        ax.axvline(summary[names[0]]["chance_uar"], color="#C44E52", linestyle="--", label="chance")
    labels = [f"{n}\n{summary[n]['model']}" + (", random weights" if r else "") for n, r in zip(names, random)]
    ax.set_yticks(y, labels)
    ax.set(xlim=(0, 1), xlabel="score on held-out speakers", title="Feature sets compared")
    from matplotlib.patches import Patch

    handles = [Patch(color="#4C72B0", label="UAR")]
    if any(random):
        handles.append(Patch(color="#B0B0B0", label="UAR, random weights (not a result)"))
    handles += ax.get_legend_handles_labels()[0]  # macro-F1, chance
    ax.legend(handles=handles, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    _save(fig, path)


def training_curves(curves: pd.DataFrame, path: Path, *, title: str) -> None:
    """Validation UAR per step of each fold (epochs of a sequence head, or search candidates), and losses."""
    has_loss = curves["train_loss"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_loss else 1, figsize=(11 if has_loss else 6, 4), squeeze=False)
    for fold, part in curves.groupby("fold", sort=True):
        axes[0, 0].plot(part["step"], part["validation_uar"], marker="o", markersize=3, label=f"fold {fold}")
        if has_loss:
            line, = axes[0, 1].plot(part["step"], part["train_loss"], label=f"fold {fold} train")
            axes[0, 1].plot(part["step"], part["validation_loss"], linestyle="--", color=line.get_color(),
                            label=f"fold {fold} validation")
    axes[0, 0].set(xlabel="epoch" if has_loss else "search candidate", ylabel="validation UAR", ylim=(0, 1),
                   title="validation speakers")
    if curves["validation_uar"].isna().all():
        axes[0, 0].text(0.5, 0.5, "no validation speakers", ha="center", va="center", transform=axes[0, 0].transAxes)
    if has_loss:
        axes[0, 1].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        axes[0, 1].legend(frameon=False, fontsize=7)
    if curves["fold"].nunique() <= 10:
        axes[0, 0].legend(frameon=False, fontsize=7)
    fig.suptitle(title)
    _save(fig, path)
