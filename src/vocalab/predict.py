"""Prediction on new audio with a trained model and the exact extractor it was trained on.

The extractor is rebuilt from the parameters recorded in the model's feature
store meta (``model.json``), not from the current params.yaml, so a model keeps
predicting as it was evaluated even after the params move on. For
``speaker_kfold`` models the fold models' probabilities are averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vocalab.audio import VIDEO_EXTENSIONS
from vocalab.datasets.base import AUDIO_EXTENSIONS
from vocalab.errors import VocalabError
from vocalab.features.extraction import extract_files
from vocalab.features.fusion import join_pooled
from vocalab.features.registry import writer_of
from vocalab.features.store import StoreMeta, pool_layers
from vocalab.metrics import argmax_labels
from vocalab.models.normalize import speaker_standardise, speaker_standardise_frames
from vocalab.training import SplitData, load_model


def audio_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Files given, and the audio files under folders given (sorted); unknown inputs are errors."""
    files: list[Path] = []
    suffixes = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise VocalabError(f"folder '{item}' holds no audio files ({', '.join(sorted(suffixes))}).")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise VocalabError(f"'{item}' does not exist. Give an audio file or a folder of them.")
    return files


def extractor_for(meta: StoreMeta) -> Any:
    """The extractor that wrote a store with this ``meta``, rebuilt from the params it recorded."""
    return writer_of(meta.feature_set).from_params(meta.params)


def _features(meta: StoreMeta, paths: list[Path], layer_pooling: str, sequences: bool,
              cache: dict[str, Any]) -> Any:
    """Pooled rows or frame sequences of ``paths``, as the store held them."""
    if meta.is_fused:
        parts = [_features(part, paths, layer_pooling, False, cache) for part in meta.components]
        return join_pooled([p.astype(np.float32).astype(np.float64) for p in parts], list(meta.components))
    key = repr((meta.feature_set, meta.params))
    if key not in cache:
        cache[key] = extract_files(extractor_for(meta), [str(p) for p in paths])[meta.feature_set]
    frames, lengths, pooled = cache[key]
    empty = [str(p) for p, n in zip(paths, lengths) if n == 0]
    if empty:
        raise VocalabError(f"{meta.feature_set} gives no features for {empty[0]}"
                           f"{f' and {len(empty) - 1} more' if len(empty) > 1 else ''} "
                           f"(too short for this extractor). Give longer clips.")
    if sequences:
        return [np.asarray(f, dtype=np.float32) for f in np.split(frames, np.cumsum(lengths)[:-1])]
    return pool_layers(pooled, meta, layer_pooling)


def predict(inputs: Sequence[str | Path], model_dir: str | Path) -> pd.DataFrame:
    """``file, label, p_<class>...`` for every audio file in ``inputs``.

    With ``train.normalize: speaker`` the given files are standardised together,
    as the utterances of one speaker: give several files of the same speaker.
    """
    models, info = load_model(Path(model_dir))
    paths = audio_files(inputs)
    labels = info.labels
    is_sequence = info.is_sequence
    values = _features(info.features, paths, info.train.layer_pooling, is_sequence, {})
    speakers = ["given files"] * len(paths)
    if info.train.normalize == "speaker":
        values = speaker_standardise_frames(values, speakers) if is_sequence else speaker_standardise(values, speakers)
    data = SplitData(np.array([""] * len(paths)), [str(p) for p in paths], speakers,
                     features=None if is_sequence else values, sequences=values if is_sequence else None)
    proba = np.mean([model.predict_proba(data) for _, model in models], axis=0)
    table = pd.DataFrame({"file": [str(p) for p in paths], "label": argmax_labels(proba, labels)})
    for k, label in enumerate(labels):
        table[f"p_{label}"] = np.round(proba[:, k], 4)
    return table
