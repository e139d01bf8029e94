"""Metrics of a trained model on held-out speakers.

UAR (unweighted average recall, i.e. balanced accuracy) is the headline metric
of speech emotion recognition: it is not inflated by the majority class.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from vocalab.features.store import FeatureStore
from vocalab.splits import speaker_overlap
from vocalab.training import split_data


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, UAR, macro-F1, per-class recall and the confusion matrix (rows: true)."""
    labels = list(labels)
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, np.unique(y_true))
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        # mean recall over the classes present in y_true (= balanced accuracy)
        "uar": round(float(np.mean(recalls[present])), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_class_recall": {lab: round(float(r), 4) for lab, r in zip(labels, recalls)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": int(len(y_true)),
    }


def evaluate(model: Any, info: dict[str, Any], store: FeatureStore, manifest: pd.DataFrame,
             splits: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray]:
    """Score ``model`` on the test (and validation) speakers.

    Returns
    -------
    metrics : dict
        What ``metrics/<set>.json`` holds; test metrics at the top level.
    predictions : DataFrame
        ``utt_id, speaker, actual, predicted`` for every test utterance.
    confusion : np.ndarray [shape=(k, k)]
        Test confusion counts, rows true and columns predicted, in ``info["classes"]`` order.
    """
    labels = [str(c) for c in info["classes"]]
    layer_pooling = info["train"].get("layer_pooling", "concat")
    test = split_data(store, manifest, splits, "test", layer_pooling)
    test_pred = model.predict(test.features)
    result = classification_metrics(test.labels, test_pred, labels)
    confusion = result.pop("confusion")
    result.pop("n")
    validation = split_data(store, manifest, splits, "validation", layer_pooling)
    metrics: dict[str, Any] = {
        "feature_set": info["feature_set"],
        **result,
        "chance_uar": round(1.0 / len(labels), 4),
        "n_train": info["n_train"],
        "n_validation": len(validation.labels),
        "n_test": len(test.labels),
        "n_test_speakers": len(set(test.speakers)),
        "n_features": info["n_features"],
        "classifier": info["train"]["model"],
        "speaker_overlap": speaker_overlap(splits),
        "pretrained": bool(store.meta.get("pretrained", False)),
    }
    if store.meta.get("model"):
        metrics["model"] = store.meta["model"]
    if store.meta.get("layers"):
        metrics["layers"] = "+".join(str(layer) for layer in store.meta["layers"])
    if test.absent_utt_ids or validation.absent_utt_ids or info.get("n_train_absent"):
        # utterances without features in this store: scored by nobody, so say how many
        metrics["n_absent"] = {"train": info.get("n_train_absent", 0), "validation": len(validation.absent_utt_ids),
                               "test": len(test.absent_utt_ids)}
    short = store.meta.get("short_clips")
    if short:
        test_ids = set(test.utt_ids) | set(test.absent_utt_ids)
        metrics["short_clips"] = {"policy": short["policy"], "n": len(short["utt_ids"]),
                                  "n_test": sum(u in test_ids for u in short["utt_ids"])}
    if len(validation.labels):
        val = classification_metrics(validation.labels, model.predict(validation.features), labels)
        metrics["validation"] = {k: val[k] for k in ("accuracy", "uar", "macro_f1")}
    predictions = pd.DataFrame({"utt_id": test.utt_ids, "speaker": test.speakers,
                                "actual": test.labels, "predicted": test_pred})
    return metrics, predictions, np.asarray(confusion)
