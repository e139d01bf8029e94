"""Metrics of trained models on held-out speakers.

UAR (unweighted average recall, i.e. balanced accuracy) is the headline metric
of speech emotion recognition: it is not inflated by the majority class. With
``speaker_kfold`` every utterance is predicted once, by the model of the fold
that held its speaker out; the top-level metrics pool those predictions and
``folds`` gives the mean and standard deviation across folds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vocalab.features.store import FeatureStore, StoreMeta
from vocalab.metrics import (BOOTSTRAP_RESAMPLES, HEADLINE, argmax_labels, classification_metrics, per_fold_metrics,
                             uar_interval)
from vocalab.model_info import ModelInfo
from vocalab.splits import fold_index, fold_view, speaker_overlap
from vocalab.training import FittedModel, SplitData, split_data


def _predict(model: FittedModel, data: SplitData, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The model's own decisions (labels) and its class probabilities."""
    return argmax_labels(model.decision_scores(data), labels), model.predict_proba(data)


#: what ``metrics/<set>.json`` holds (a DVC metric, diffed in review); everything else goes to the details file
HEADLINE_KEYS = ("uar", "uar_std", "macro_f1", "accuracy", "n_test", "n_features")


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The six numbers a reviewer reads per feature set: UAR, its std over folds, macro-F1, accuracy, sizes.

    ``uar_std`` is 0.0 for a single held-out split (there is no spread to report).
    """
    values = {**metrics, "uar_std": metrics.get("folds", {}).get("uar_std", 0.0)}
    return {key: values[key] for key in HEADLINE_KEYS}


def refitted(info: ModelInfo) -> bool:
    """Whether each fold's final model was fitted on its validation speakers too (``train.refit``)."""
    return all(info.train.refits(f.n_validation) for f in info.folds)


def protocol(info: ModelInfo, splits: pd.DataFrame, split_config: dict[str, Any] | None) -> dict[str, Any]:
    """How the numbers were obtained, stated next to them."""
    n_folds = len(info.folds)
    has_validation = all(f.n_validation > 0 for f in info.folds)
    result = {
        "split": (split_config or {}).get("strategy", "speaker_kfold" if n_folds > 1 else "held-out"),
        "folds": n_folds,
        "speaker_overlap": speaker_overlap(splits),
        "normalize": info.train.normalize,
        "model_selection": ("validation speakers" if has_validation else "none (no validation speakers)"),
        "final_fit": "training + validation speakers" if refitted(info) else "training speakers",
        "candidates": max(len(f.candidates) for f in info.folds),
        "test_speakers_used_for": "final scoring only",
    }
    if info.kind == "checkpoint":  # nothing was fitted or chosen here
        result.update(model_selection="none (a ready-made checkpoint; its labels mapped by "
                                      "train.checkpoint.label_map)",
                      final_fit="none here: trained elsewhere, on data vocalab does not know (make sure "
                                "these speakers were not among it)", normalize="none")
    if result["split"] == "corpus":
        result["test_corpus"] = (split_config or {}).get("test_corpus")
    if info.is_sequence:
        result["early_stopping"] = "validation UAR" if has_validation else "none (fixed epochs)"
    return result


@dataclass
class FoldPredictions:
    """Every fold's test predictions, and what the folds' validation speakers and absent utterances add up to."""

    parts: list[pd.DataFrame] = field(default_factory=list)
    validation_true: list[str] = field(default_factory=list)
    validation_pred: list[str] = field(default_factory=list)
    n_absent: dict[str, int] = field(default_factory=lambda: {"train": 0, "validation": 0, "test": 0})
    test_ids: set[str] = field(default_factory=set)


def predict_folds(models: list[tuple[str, FittedModel]], info: ModelInfo, store: FeatureStore,
                  manifest: pd.DataFrame, splits: pd.DataFrame) -> FoldPredictions:
    """Each fold's model on its own test (and validation) speakers."""
    labels = info.labels
    options = dict(layer_pooling=info.train.layer_pooling, normalize=info.train.normalize,
                   sequences=info.is_sequence, vectors=info.reads_vectors)
    result = FoldPredictions()
    for (name, model), fold in zip(models, info.folds):
        view = fold_view(splits, name)
        test = split_data(store, manifest, view, "test", **options)
        validation = split_data(store, manifest, view, "validation", **options)
        predicted, proba = _predict(model, test, labels)
        part = pd.DataFrame({"utt_id": test.utt_ids, "speaker": test.speakers, "fold": fold_index(name),
                             "actual": test.labels, "predicted": predicted})
        for k, label in enumerate(labels):
            part[f"p_{label}"] = np.round(proba[:, k], 4) if len(proba) else []
        result.parts.append(part)
        if len(validation.labels) and not refitted(info):  # a refitted model has learned these speakers
            result.validation_true += list(validation.labels)
            result.validation_pred += list(_predict(model, validation, labels)[0])
        result.n_absent["train"] += fold.n_train_absent
        result.n_absent["validation"] += len(validation.absent_utt_ids)
        result.n_absent["test"] += len(test.absent_utt_ids)
        result.test_ids |= set(test.utt_ids) | set(test.absent_utt_ids)
    return result


def provenance(meta: StoreMeta, test_ids: set[str]) -> dict[str, Any]:
    """Where the features came from, for the metrics: network, layers, fused parts, short clips."""
    result: dict[str, Any] = {}
    if meta.model:
        result["model"] = meta.model
    if meta.layers:
        result["layers"] = "+".join(str(layer) for layer in meta.layers)
    if meta.is_fused:
        result["components"] = [part.feature_set for part in meta.components]
    if meta.short_clips:
        short = meta.short_clips
        result["short_clips"] = {"policy": short["policy"], "n": len(short["utt_ids"]),
                                 "n_test": sum(u in test_ids for u in short["utt_ids"])}
    return result


def training_record(info: ModelInfo) -> dict[str, Any]:
    """What training chose: searched candidates, best epochs, learned layer weights."""
    result: dict[str, Any] = {}
    if info.searched:
        result["search"] = [{"fold": f.name, "chosen": f.chosen_candidate.params,
                             "validation_uar": [c.validation_uar for c in f.candidates]} for f in info.folds]
    if info.kind == "checkpoint":
        from vocalab.models.checkpoint import label_map_of, unreachable_labels

        result["checkpoint"] = {"model": info.features.model, "label_map": label_map_of(info),
                                "unreachable_labels": unreachable_labels(info)}
    if info.is_sequence:
        chosen = [f.chosen_candidate for f in info.folds]
        result["best_epoch"] = [c.best_epoch for c in chosen]
        if chosen[0].layer_weights:
            result["layer_weights"] = chosen[0].layer_weights
    return result


def unknown_speaker_metrics(models: list[tuple[str, FittedModel]], info: ModelInfo, store: FeatureStore,
                            manifest: pd.DataFrame, splits: pd.DataFrame) -> dict[str, Any]:
    """What a single file of a speaker never heard gets: each fold's unknown-speaker model on its test speakers.

    Such a file cannot be standardised with its speaker's statistics, so ``vocalab
    predict`` gives it to the unknown-speaker model (global normalisation); these are that
    path's metrics, on the same held-out speakers as the headline ones.
    """
    actual, predicted = [], []
    for name, model in models:
        test = split_data(store, manifest, fold_view(splits, name), "test", layer_pooling=info.train.layer_pooling,
                          normalize="global", sequences=info.is_sequence, vectors=info.reads_vectors)
        actual += list(test.labels)
        predicted += list(_predict(model, test, info.labels)[0])
    result = classification_metrics(actual, predicted, info.labels)
    return {**{key: result[key] for key in HEADLINE}, "n_test": len(actual),
            "path": "vocalab predict of a file whose speaker has too few recordings: the same model fitted "
                    "under global normalisation"}


def evaluate(models: list[tuple[str, FittedModel]], info: ModelInfo, store: FeatureStore,
             manifest: pd.DataFrame, splits: pd.DataFrame, split_config: dict[str, Any] | None = None,
             unknown_speaker_models: list[tuple[str, FittedModel]] | None = None,
             ) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray]:
    """Score each fold's model on its test (and validation) speakers.

    With ``unknown_speaker_models`` (:func:`vocalab.training.load_unknown_speaker_models`),
    the metrics also say what a file of an unknown speaker gets (``unknown_speaker``).

    Returns
    -------
    metrics : dict
        What ``metrics/<set>.json`` holds; pooled test metrics at the top level.
    predictions : DataFrame
        ``utt_id, speaker, fold, actual, predicted, p_<class>...`` for every test utterance.
    confusion : np.ndarray [shape=(k, k)]
        Pooled test confusion counts, rows true and columns predicted, in ``info.classes`` order.
    """
    labels = info.labels
    folds = predict_folds(models, info, store, manifest, splits)
    predictions = pd.concat(folds.parts, ignore_index=True)
    result = classification_metrics(predictions["actual"], predictions["predicted"], labels)
    confusion = result.pop("confusion")
    result.pop("n")
    metrics: dict[str, Any] = {
        "feature_set": info.feature_set,
        **result,
        "chance_uar": round(1.0 / len(labels), 4),
        "protocol": protocol(info, splits, split_config),
        "n_train": info.folds[0].n_train,
        "n_validation": info.folds[0].n_validation,
        "n_test": int(len(predictions)),
        "n_test_speakers": int(predictions["speaker"].nunique()),
        # how far the UAR could move with other speakers of the same kind: few test speakers, a wide interval
        "uar_ci95": uar_interval(predictions["actual"], predictions["predicted"], predictions["speaker"]),
        "uar_ci95_method": f"percentile bootstrap over test speakers ({BOOTSTRAP_RESAMPLES} resamples)",
        "n_features": info.n_features,
        "classifier": info.train.model,
        "speaker_overlap": speaker_overlap(splits),
        "pretrained": store.meta.pretrained,
    }
    if len(models) > 1:
        per_fold = per_fold_metrics(predictions, labels)
        metrics["folds"] = {
            **{f"{k}_{stat}": round(float(fn([f[k] for f in per_fold])), 4)
               for k in HEADLINE for stat, fn in (("mean", np.mean), ("std", np.std))},
            "per_fold": per_fold,
        }
    metrics.update(training_record(info))
    if unknown_speaker_models:
        metrics["unknown_speaker"] = unknown_speaker_metrics(unknown_speaker_models, info, store, manifest, splits)
    prov = provenance(store.meta, folds.test_ids)
    short = prov.pop("short_clips", None)
    metrics.update(prov)
    if any(folds.n_absent.values()):
        # utterances without features in this store: scored by nobody, so say how many
        metrics["n_absent"] = folds.n_absent
    if short:
        metrics["short_clips"] = short
    if folds.validation_true:
        val = classification_metrics(folds.validation_true, folds.validation_pred, labels)
        metrics["validation"] = {k: val[k] for k in HEADLINE}
    elif refitted(info):  # scored while choosing, before the refit
        metrics["validation"] = {"uar": round(float(np.mean([f.chosen_candidate.validation_uar for f in info.folds])),
                                              4)}
    return metrics, predictions, np.asarray(confusion)
