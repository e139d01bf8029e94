"""Prediction on new audio with a trained model and the exact extractor it was trained on.

The extractor is rebuilt from the parameters recorded in the model's feature
store meta (``model.json``), not from the current params.yaml, so a model keeps
predicting as it was evaluated even after the params move on. For
``speaker_kfold`` models the fold models' decision scores and probabilities are
averaged.
"""

from __future__ import annotations

import re
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
from vocalab.models.normalize import MIN_SPEAKER_FILES, standardise_groups
from vocalab.models.persist import load_speaker_reference
from vocalab.training import SplitData, fold_dir, load_model


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


def speaker_groups(paths: list[Path], speaker: str | None, pattern: str | None) -> list[str | None]:
    """The speaker of each file: ``speaker`` for all, or the ``speaker`` group of ``pattern`` in its name.

    Without either, every file is from an unknown speaker (``None``).
    """
    if speaker is not None:
        return [speaker] * len(paths)
    if pattern is None:
        return [None] * len(paths)
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise VocalabError(f"--speaker-pattern {pattern!r} is not a valid regular expression ({err}).") from err
    if "speaker" not in regex.groupindex:
        raise VocalabError(f"--speaker-pattern {pattern!r} has no 'speaker' group: write it as "
                           f"'(?P<speaker>...)' around the part of the file name that names the speaker.")
    groups = []
    for path in paths:
        match = regex.search(path.name)
        if match is None or not match.group("speaker"):
            raise VocalabError(f"--speaker-pattern {pattern!r} finds no speaker in '{path}'. Fix the pattern, or "
                               f"predict that file separately (with --speaker, or alone).")
        groups.append(match.group("speaker"))
    return groups


def predict(inputs: Sequence[str | Path], model_dir: str | Path, *, speaker: str | None = None,
            speaker_pattern: str | None = None, min_speaker_files: int = MIN_SPEAKER_FILES) -> pd.DataFrame:
    """``file, speaker, label, p_<class>...`` (and ``normalised_by``) for every audio file in ``inputs``.

    A model trained with ``train.normalize: speaker`` standardises each speaker's
    features with that speaker's own statistics. Files are grouped into speakers by
    ``speaker`` (all files one speaker) or ``speaker_pattern`` (a regex with a
    ``speaker`` group, searched in each file name); a speaker with fewer than
    ``min_speaker_files`` files, or a file of an unknown speaker (neither option), is
    standardised with the average training speaker's statistics instead, and the
    ``normalised_by`` column says which was used. Labels are the models' own
    decisions, averaged over the folds of a ``speaker_kfold`` model.
    """
    if min_speaker_files < 2:
        raise VocalabError(f"--min-speaker-files {min_speaker_files}: statistics need at least 2 files.")
    models, info = load_model(Path(model_dir))
    paths = audio_files(inputs)
    labels = info.labels
    is_sequence = info.is_sequence
    values = _features(info.features, paths, info.train.layer_pooling, is_sequence, {})
    groups = speaker_groups(paths, speaker, speaker_pattern)
    names = [str(p) for p in paths]
    speakers = ["" if g is None else g for g in groups]
    proba, scores, how = [], [], None
    for name, model in models:
        fold_values = values
        if info.train.normalize == "speaker":
            reference = load_speaker_reference(fold_dir(Path(model_dir), name))
            fold_values, how = standardise_groups(values, groups, reference, min_files=min_speaker_files)
        data = SplitData(np.array([""] * len(paths)), names, speakers, features=None if is_sequence else fold_values,
                         sequences=fold_values if is_sequence else None)
        proba.append(model.predict_proba(data))
        scores.append(model.decision_scores(data))
    # each fold model's own decision scores, averaged: with one model, exactly its decision
    table = pd.DataFrame({"file": names, "speaker": speakers,
                          "label": argmax_labels(np.mean(scores, axis=0), labels)})
    mean_proba = np.mean(proba, axis=0)
    for k, label in enumerate(labels):
        table[f"p_{label}"] = np.round(mean_proba[:, k], 4)
    if how is not None:
        table["normalised_by"] = how
    return table
