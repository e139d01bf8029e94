"""One table across feature sets: the leaderboard a pull request pastes.

Numbers are recomputed from each set's test predictions (the same function the
evaluate stage uses), and provenance is read from each set's ``model.json``, so
the summary depends only on declared inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vocalab.errors import VocalabError
from vocalab.metrics import HEADLINE, classification_metrics, per_fold_metrics
from vocalab.model_info import INFO_FILE, ModelInfo
from vocalab.splits import speaker_overlap


def set_summary(name: str, predictions: pd.DataFrame, info: ModelInfo) -> dict[str, Any]:
    """Headline metrics of one set, with the spread across folds when there are several."""
    labels = info.labels
    pooled = classification_metrics(predictions["actual"].astype(str), predictions["predicted"].astype(str), labels)
    row: dict[str, Any] = {k: pooled[k] for k in HEADLINE}
    folds = sorted(predictions["fold"].unique())
    if len(folds) > 1:
        row["uar_std"] = round(float(np.std([m["uar"] for m in per_fold_metrics(predictions, labels)])), 4)
    row.update({
        "model": info.train.model,
        "normalize": info.train.normalize,
        "folds": len(folds),
        "pretrained": info.features.pretrained,
        "random_init": info.random_init_network,
        "n_test": int(len(predictions)),
        "n_test_speakers": int(predictions["speaker"].nunique()),
        "chance_uar": round(1.0 / len(labels), 4),
    })
    return row


def summarise(feature_sets: Sequence[str], predictions_dir: Path, models_dir: Path,
              splits: pd.DataFrame, *, test_corpus: str | None = None) -> dict[str, Any]:
    """``{set: summary}`` for every set in ``feature_sets``, best UAR first (``test_corpus``: the corpus held
    out whole, with ``split.strategy: corpus``)."""
    overlap = speaker_overlap(splits)
    rows = {}
    for name in feature_sets:
        path = Path(predictions_dir) / f"{name}.csv"
        info_path = Path(models_dir) / name / INFO_FILE
        if not path.is_file() or not info_path.is_file():
            raise VocalabError(f"feature set '{name}' has no predictions ('{path}') or model ('{info_path}'). "
                               f"Run: dvc repro evaluate@{name}")
        predictions = pd.read_csv(path, dtype={"utt_id": str, "speaker": str, "actual": str, "predicted": str},
                                  keep_default_na=False)
        rows[name] = set_summary(name, predictions, ModelInfo.read(info_path.parent))
        rows[name]["speaker_overlap"] = overlap
        if test_corpus is not None:
            rows[name]["test_corpus"] = test_corpus
    return dict(sorted(rows.items(), key=lambda item: -item[1]["uar"]))


#: how the leaderboard marks a set whose features come from a network with random weights
RANDOM_MARK = "(random weights: not a result)"


def leaderboard_markdown(summary: dict[str, Any]) -> str:
    """A GitHub Markdown table, best UAR first."""
    lines = ["| rank | feature set | model | UAR | macro-F1 | accuracy | test utts (speakers) | protocol |",
             "|---:|---|---|---:|---:|---:|---:|---|"]
    for rank, (name, row) in enumerate(summary.items(), start=1):
        spread = f" ± {row['uar_std']:.3f}" if "uar_std" in row else ""
        protocol = f"{row['folds']}-fold speakers" if row["folds"] > 1 else "held-out speakers"
        if row.get("test_corpus"):
            protocol = f"held-out corpus {row['test_corpus']}"
        if row["speaker_overlap"]:
            protocol = "**speaker overlap** (not speaker-independent)"
        protocol += (", a ready-made checkpoint, not trained here" if row["model"] == "checkpoint"
                     else f", {row['normalize']} norm")
        shown = f"{name} {RANDOM_MARK}" if row["random_init"] else name
        lines.append(f"| {rank} | {shown} | {row['model']} | {row['uar']:.3f}{spread} | {row['macro_f1']:.3f} | "
                     f"{row['accuracy']:.3f} | {row['n_test']} ({row['n_test_speakers']}) | {protocol} |")
    if summary:
        lines.append("")
        lines.append(f"Chance UAR: {next(iter(summary.values()))['chance_uar']:.3f}. "
                     f"UAR is the mean of per-class recalls on speakers no model was trained on.")
        if any(row["random_init"] for row in summary.values()):
            lines.append("")
            lines.append(f"{RANDOM_MARK}: features from a network with random weights, or such a network fine-tuned "
                         f"(init: random). These rows check the plumbing only; they are not results. Set init: "
                         f"pretrained with real weights.")
    return "\n".join(lines) + "\n"
