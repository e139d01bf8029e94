"""Metrics of trained models on held-out speakers.

UAR (unweighted average recall, i.e. balanced accuracy) is the headline metric
of speech emotion recognition: it is not inflated by the majority class. With
``speaker_kfold`` every utterance is predicted once, by the model of the fold
that held its speaker out; the top-level metrics pool those predictions and
``folds`` gives the mean and standard deviation across folds.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from vocalab.features.store import FeatureStore
from vocalab.splits import fold_index, fold_view, speaker_overlap
from vocalab.training import FittedModel, SplitData, split_data

HEADLINE = ("accuracy", "uar", "macro_f1")


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, UAR, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: true)."""
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    present = np.isin(labels, np.unique(y_true))
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        # mean recall over the classes present in y_true (= balanced accuracy)
        "uar": round(float(np.mean(recall[present])), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_class": {lab: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                            "f1": round(float(f), 4), "support": int(s)}
                      for lab, p, r, f, s in zip(labels, precision, recall, f1, support)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": int(len(y_true)),
    }


def argmax_labels(proba: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The most probable label of each row of ``proba`` (columns in ``labels`` order)."""
    return np.asarray(labels)[proba.argmax(axis=1)] if len(proba) else np.array([], dtype=str)


def per_fold_metrics(predictions: pd.DataFrame, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Headline metrics and ``n_test`` of each fold of ``predictions`` (columns fold, actual, predicted)."""
    result = []
    for _, part in predictions.groupby("fold", sort=True):
        metrics = classification_metrics(part["actual"].astype(str), part["predicted"].astype(str), labels)
        result.append({k: metrics[k] for k in HEADLINE} | {"n_test": len(part)})
    return result


def _predict(model: FittedModel, data: SplitData, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    proba = model.predict_proba(data)
    return argmax_labels(proba, labels), proba


def protocol(info: dict[str, Any], splits: pd.DataFrame, split_config: dict[str, Any] | None) -> dict[str, Any]:
    """How the numbers were obtained, stated next to them."""
    n_folds = len(info["folds"])
    searched = max(len(f["candidates"]) for f in info["folds"])
    has_validation = all(f["n_validation"] > 0 for f in info["folds"])
    result = {
        "split": (split_config or {}).get("strategy", "speaker_kfold" if n_folds > 1 else "held-out"),
        "folds": n_folds,
        "speaker_overlap": speaker_overlap(splits),
        "normalize": info["train"].get("normalize", "global"),
        "model_selection": ("validation speakers" if has_validation else "none (no validation speakers)"),
        "candidates": searched,
        "test_speakers_used_for": "final scoring only",
    }
    if info["kind"] == "sequence":
        result["early_stopping"] = "validation UAR" if has_validation else "none (fixed epochs)"
    return result


def evaluate(models: list[tuple[str, FittedModel]], info: dict[str, Any], store: FeatureStore,
             manifest: pd.DataFrame, splits: pd.DataFrame,
             split_config: dict[str, Any] | None = None) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray]:
    """Score each fold's model on its test (and validation) speakers.

    Returns
    -------
    metrics : dict
        What ``metrics/<set>.json`` holds; pooled test metrics at the top level.
    predictions : DataFrame
        ``utt_id, speaker, fold, actual, predicted, p_<class>...`` for every test utterance.
    confusion : np.ndarray [shape=(k, k)]
        Pooled test confusion counts, rows true and columns predicted, in ``info["classes"]`` order.
    """
    labels = [str(c) for c in info["classes"]]
    options = dict(layer_pooling=info["train"].get("layer_pooling", "concat"),
                   normalize=info["train"].get("normalize", "global"), sequences=info["kind"] == "sequence")
    parts, val_true, val_pred = [], [], []
    n_absent = {"train": 0, "validation": 0, "test": 0}
    test_ids: set[str] = set()
    for (name, model), fold in zip(models, info["folds"]):
        view = fold_view(splits, name)
        test = split_data(store, manifest, view, "test", **options)
        validation = split_data(store, manifest, view, "validation", **options)
        predicted, proba = _predict(model, test, labels)
        part = pd.DataFrame({"utt_id": test.utt_ids, "speaker": test.speakers,
                             "fold": fold_index(name),
                             "actual": test.labels, "predicted": predicted})
        for k, label in enumerate(labels):
            part[f"p_{label}"] = np.round(proba[:, k], 4) if len(proba) else []
        parts.append(part)
        if len(validation.labels):
            val_true += list(validation.labels)
            val_pred += list(_predict(model, validation, labels)[0])
        n_absent["train"] += fold["n_train_absent"]
        n_absent["validation"] += len(validation.absent_utt_ids)
        n_absent["test"] += len(test.absent_utt_ids)
        test_ids |= set(test.utt_ids) | set(test.absent_utt_ids)
    predictions = pd.concat(parts, ignore_index=True)
    result = classification_metrics(predictions["actual"], predictions["predicted"], labels)
    confusion = result.pop("confusion")
    result.pop("n")
    metrics: dict[str, Any] = {
        "feature_set": info["feature_set"],
        **result,
        "chance_uar": round(1.0 / len(labels), 4),
        "protocol": protocol(info, splits, split_config),
        "n_train": info["n_train"],
        "n_validation": info["folds"][0]["n_validation"],
        "n_test": int(len(predictions)),
        "n_test_speakers": int(predictions["speaker"].nunique()),
        "n_features": info["n_features"],
        "classifier": info["train"]["model"],
        "speaker_overlap": speaker_overlap(splits),
        "pretrained": bool(store.meta.get("pretrained", False)),
    }
    if len(models) > 1:
        per_fold = per_fold_metrics(predictions, labels)
        metrics["folds"] = {
            **{f"{k}_{stat}": round(float(fn([f[k] for f in per_fold])), 4)
               for k in HEADLINE for stat, fn in (("mean", np.mean), ("std", np.std))},
            "per_fold": per_fold,
        }
    if any(len(f["candidates"]) > 1 for f in info["folds"]):
        metrics["search"] = [{"fold": f["name"], "chosen": f["chosen_params"],
                              "validation_uar": [c["validation_uar"] for c in f["candidates"]]}
                             for f in info["folds"]]
    if info["kind"] == "sequence":
        chosen = [f["candidates"][f["chosen"]] for f in info["folds"]]
        metrics["best_epoch"] = [c["best_epoch"] for c in chosen]
        if chosen[0].get("layer_weights"):
            metrics["layer_weights"] = chosen[0]["layer_weights"]
    if store.meta.get("model"):
        metrics["model"] = store.meta["model"]
    if store.meta.get("layers"):
        metrics["layers"] = "+".join(str(layer) for layer in store.meta["layers"])
    if store.meta.get("components"):
        metrics["components"] = [store.meta["components"]["a"]["feature_set"],
                                 store.meta["components"]["b"]["feature_set"]]
    if any(n_absent.values()):
        # utterances without features in this store: scored by nobody, so say how many
        metrics["n_absent"] = n_absent
    short = store.meta.get("short_clips")
    if short:
        metrics["short_clips"] = {"policy": short["policy"], "n": len(short["utt_ids"]),
                                  "n_test": sum(u in test_ids for u in short["utt_ids"])}
    if val_true:
        val = classification_metrics(val_true, val_pred, labels)
        metrics["validation"] = {k: val[k] for k in HEADLINE}
    return metrics, predictions, np.asarray(confusion)
