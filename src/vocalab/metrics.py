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
