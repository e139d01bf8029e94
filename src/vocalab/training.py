"""Fit a classifier on one feature store's training split and save it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from vocalab.errors import FeatureStoreError, VocalabError
from vocalab.features.store import FeatureStore
from vocalab.models import TrainConfig, build_classifier
from vocalab.params import to_dict

MODEL_FILE = "model.joblib"
INFO_FILE = "model.json"


@dataclass(frozen=True)
class SplitData:
    """Pooled features of one split, aligned by utt_id with the manifest."""

    features: np.ndarray  # [shape=(n, 2 * dim)]
    labels: np.ndarray  # [shape=(n,)]
    utt_ids: list[str]
    speakers: list[str]
    absent_utt_ids: list[str] = field(default_factory=list)  # in the split, but without frames in the store


def pooled_features(store: FeatureStore, rows: np.ndarray, layer_pooling: str = "concat") -> np.ndarray:
    """Pooled statistics of store ``rows`` as a float64 matrix.

    A store of several layers (meta ``layers`` and ``layer_dim``) holds each
    layer's mean then each layer's std; ``layer_pooling="mean"`` averages them
    across layers into ``2 * layer_dim`` columns, ``"concat"`` keeps them all.
    """
    pooled = np.asarray(store.pooled[rows], dtype=np.float64)
    layers = store.meta.get("layers") or []
    if layer_pooling == "concat" or len(layers) <= 1:
        return pooled
    n_layers, layer_dim = len(layers), int(store.meta["layer_dim"])
    half = n_layers * layer_dim
    if pooled.shape[1] != 2 * half:
        raise FeatureStoreError(
            f"feature store '{store.root}' has {pooled.shape[1]} pooled columns, expected {2 * half} "
            f"for {n_layers} layers of {layer_dim}. Rebuild it with 'dvc repro'."
        )
    mean = pooled[:, :half].reshape(-1, n_layers, layer_dim).mean(axis=1)
    std = pooled[:, half:].reshape(-1, n_layers, layer_dim).mean(axis=1)
    return np.concatenate([mean, std], axis=1)


def split_data(store: FeatureStore, manifest: pd.DataFrame, splits: pd.DataFrame, split: str,
               layer_pooling: str = "concat") -> SplitData:
    """The rows of ``split``, looked up in ``store`` by utt_id (never by position).

    Utterances the store records as absent (an extractor gave them no frames, e.g.
    VGGish with ``short_clips: drop``) are left out and listed in ``absent_utt_ids``.
    """
    table = manifest[["utt_id", "speaker", "label"]].merge(
        splits[["utt_id", "split"]], on="utt_id", validate="one_to_one"
    )
    table = table[table["split"] == split]
    is_absent = table["utt_id"].isin(set(store.meta.get("absent_utt_ids", [])))
    absent = table.loc[is_absent, "utt_id"].tolist()
    table = table[~is_absent]
    rows = store.index_of(table["utt_id"].tolist())
    features = pooled_features(store, rows, layer_pooling)
    if not np.isfinite(features).all():
        bad = table["utt_id"].iloc[int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])]
        raise FeatureStoreError(
            f"feature store '{store.root}' holds NaN/inf for utterance '{bad}'. Check that file's audio."
        )
    return SplitData(features, table["label"].to_numpy(dtype=str), table["utt_id"].tolist(),
                     table["speaker"].tolist(), absent)


def _absent_hint(data: SplitData) -> str:
    if not data.absent_utt_ids:
        return ""
    return (f" ({len(data.absent_utt_ids)} of its utterances have no features in this store, "
            f"e.g. VGGish short_clips: drop)")


def train(store: FeatureStore, manifest: pd.DataFrame, splits: pd.DataFrame, config: TrainConfig,
          out_dir: Path) -> dict[str, Any]:
    """Fit on the training split and write ``model.joblib`` + ``model.json`` to ``out_dir``."""
    data = split_data(store, manifest, splits, "train", config.layer_pooling)
    classes = sorted(set(manifest["label"]))
    missing = sorted(set(classes) - set(data.labels))
    if len(data.labels) == 0:
        raise VocalabError(
            f"the training split is empty{_absent_hint(data)}. Check the 'split' params and metrics/split.json."
        )
    if missing:
        raise VocalabError(
            f"label(s) {missing} have no training utterance, so no model can learn them. "
            f"Change split.seed or the split fractions so every label is in train."
        )
    model = build_classifier(config)
    model.fit(data.features, data.labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out_dir / MODEL_FILE)
    info = {
        "feature_set": store.meta["feature_set"],
        "classes": [str(c) for c in model.classes_],
        "train": to_dict(config),
        "features": store.meta,
        "n_train": len(data.labels),
        "n_train_absent": len(data.absent_utt_ids),
        "n_train_speakers": len(set(data.speakers)),
        "n_features": int(data.features.shape[1]),
    }
    (out_dir / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return info


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load a model saved by :func:`train` (a pickle: only load models this project wrote)."""
    model_dir = Path(model_dir)
    if not (model_dir / MODEL_FILE).is_file() or not (model_dir / INFO_FILE).is_file():
        raise VocalabError(f"no trained model in '{model_dir}'. Train it with: dvc repro train")
    info = json.loads((model_dir / INFO_FILE).read_text(encoding="utf-8"))
    return joblib.load(model_dir / MODEL_FILE), info
