"""Duration analysis of a manifest: per dataset, per label, and short-clip counts.

The short-clip threshold defaults to VGGish's example window (0.975 s of audio:
96 frames of 10 ms plus a 25 ms window), under which VGGish yields no embedding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vocalab.windows import VGGISH_MIN_CLIP_S

#: clips shorter than this fill no VGGish example
VGGISH_WINDOW_S = VGGISH_MIN_CLIP_S
PERCENTILES = (5, 25, 50, 75, 95)


def describe(durations_s: np.ndarray) -> dict[str, float]:
    """Count, total, mean, std, min, percentiles and max of durations in seconds."""
    values = np.asarray(durations_s, dtype=np.float64)
    stats = {
        "count": int(values.size),
        "total_s": round(float(values.sum()), 3),
        "mean_s": round(float(values.mean()), 4),
        "std_s": round(float(values.std()), 4),
        "min_s": round(float(values.min()), 4),
    }
    for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES)):
        stats[f"p{q}_s"] = round(float(value), 4)
    stats["max_s"] = round(float(values.max()), 4)
    return stats


def duration_report(manifest: pd.DataFrame, *, short_threshold_s: float = VGGISH_WINDOW_S) -> dict[str, Any]:
    """Everything ``metrics/durations.json`` holds."""
    durations = manifest["duration_s"].to_numpy(dtype=np.float64)
    counts = manifest["label"].value_counts().sort_index()
    short = durations < short_threshold_s
    return {
        "overall": describe(durations),
        "sample_rates": {str(k): int(v) for k, v in manifest["sample_rate"].value_counts().sort_index().items()}
        if "sample_rate" in manifest else {},
        "by_dataset": {str(k): describe(g["duration_s"].to_numpy()) for k, g in manifest.groupby("dataset")},
        "by_label": {str(k): describe(g["duration_s"].to_numpy()) for k, g in manifest.groupby("label")},
        "class_balance": {
            "counts": {str(k): int(v) for k, v in counts.items()},
            "imbalance_ratio": round(float(counts.max() / counts.min()), 3),
        },
        "short_clips": {
            "threshold_s": short_threshold_s,
            "count": int(short.sum()),
            "fraction": round(float(short.mean()), 4),
            "by_label": {str(k): int(v) for k, v in manifest.loc[short, "label"].value_counts().sort_index().items()},
        },
    }
