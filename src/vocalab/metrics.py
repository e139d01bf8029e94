"""Classification metrics: UAR (the headline of speech emotion recognition), macro-F1, accuracy.

UAR, unweighted average recall (balanced accuracy), is the mean of the per-class
recalls, so it is not inflated by the majority class.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

HEADLINE = ("accuracy", "uar", "macro_f1")


def uar(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Mean recall over the classes present in ``y_true``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


#: resamples of the speaker bootstrap, and its seed (the interval is the same on every run)
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def speaker_bootstrap_uar(y_true: Sequence[Any], y_pred: Sequence[Any], speakers: Sequence[Any], *,
                          resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """UAR of ``resamples`` bootstrap samples of the test *speakers* (drawn with replacement, each bringing all
    of their utterances): utterances of one speaker are not independent, so speakers are the unit resampled.

    Returns
    -------
    np.ndarray [shape=(resamples,)]; a class no drawn speaker has is left out of that sample's mean recall.
    """
    y_true, y_pred, speakers = np.asarray(y_true), np.asarray(y_pred), np.asarray(speakers)
    names, speaker_of = np.unique(speakers, return_inverse=True)
    classes, class_of = np.unique(y_true, return_inverse=True)
    totals = np.zeros((len(names), len(classes)))
    correct = np.zeros((len(names), len(classes)))
    np.add.at(totals, (speaker_of, class_of), 1.0)
    np.add.at(correct, (speaker_of, class_of), (y_true == y_pred).astype(float))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=resamples).astype(float)
    seen, hit = draws @ totals, draws @ correct
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(seen > 0, hit / np.where(seen > 0, seen, 1.0), np.nan)
    return np.nanmean(recall, axis=1)


def uar_interval(y_true: Sequence[Any], y_pred: Sequence[Any], speakers: Sequence[Any],
                 level: float = 0.95) -> list[float] | None:
    """The percentile interval of UAR from :func:`speaker_bootstrap_uar`; None with fewer than two speakers."""
    if len(set(speakers)) < 2:
        return None
    low, high = percentile_interval(speaker_bootstrap_uar(y_true, y_pred, speakers), level)
    return [round(low, 4), round(high, 4)]


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap ``samples``."""
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, UAR, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: true)."""
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, np.unique(y_true))
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "uar": round(float(np.mean(recall[present])), 4),  # = uar(y_true, y_pred)
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_class": {lab: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                            "f1": round(float(f), 4), "support": int(s)}
                      for lab, p, r, f, s in zip(labels, precision, recall, f1, support)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": int(len(y_true)),
    }


def argmax_labels(scores: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The label of the highest score of each row of ``scores`` (columns in ``labels`` order)."""
    return np.asarray(labels)[scores.argmax(axis=1)] if len(scores) else np.array([], dtype=str)


def per_fold_metrics(predictions: pd.DataFrame, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Headline metrics and ``n_test`` of each fold of ``predictions`` (columns fold, actual, predicted)."""
    result = []
    for _, part in predictions.groupby("fold", sort=True):
        metrics = classification_metrics(part["actual"].astype(str), part["predicted"].astype(str), labels)
        result.append({k: metrics[k] for k in HEADLINE} | {"n_test": len(part)})
    return result
