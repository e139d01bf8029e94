"""Feature normalisation per speaker: each speaker standardised with their own statistics.

A well-known gain for emotion recognition on acted corpora: what is left after
removing a speaker's mean and spread is how they *vary*, which is what emotion
changes. It needs no labels, so held-out speakers are normalised with the
statistics of their own (unlabelled) utterances, never with anyone else's.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

_MIN_STD = 1e-8
# fewer recordings than this give a speaker's statistics too noisy to standardise with (vocalab predict)
MIN_SPEAKER_FILES = 10


def _standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    return mean, np.where(std < _MIN_STD, 1.0, std)  # a constant feature is only centred


def speaker_standardise(features: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """Z-score each row with the mean and std of the rows of the same speaker.

    Parameters
    ----------
    features : np.ndarray [shape=(n, d)]
    speakers : sequence of str, length n

    Returns
    -------
    np.ndarray [shape=(n, d), dtype=float64]
    """
    features = np.asarray(features, dtype=np.float64)
    speakers = np.asarray(speakers)
    out = np.empty_like(features)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        mean, std = _standardise(features[rows])
        out[rows] = (features[rows] - mean) / std
    return out


def speaker_standardise_frames(sequences: Sequence[np.ndarray], speakers: Sequence[str]) -> list[np.ndarray]:
    """Z-score every frame with the statistics of all frames of the same speaker.

    Parameters
    ----------
    sequences : list of np.ndarray [shape=(t_i, d)]
    speakers : sequence of str, one per sequence

    Returns
    -------
    list of np.ndarray [shape=(t_i, d), dtype=float32]
    """
    speakers = np.asarray(speakers)
    out: list[np.ndarray] = [np.empty(0)] * len(sequences)
    for speaker in np.unique(speakers):
        idx = np.flatnonzero(speakers == speaker)
        mean, std = _standardise(np.concatenate([np.asarray(sequences[i], dtype=np.float64) for i in idx]))
        for i in idx:
            out[i] = ((np.asarray(sequences[i], dtype=np.float64) - mean) / std).astype(np.float32)
    return out


def own_statistics(groups: Sequence[str | None], *, min_files: int) -> tuple[np.ndarray, list[str]]:
    """Which new recordings can be standardised with their own speaker's statistics (``vocalab predict``).

    A group of at least ``min_files`` recordings can, as held-out speakers are in
    evaluation. A smaller group, or a recording of an unknown speaker (group ``None``),
    would give statistics of one or two samples (every feature 0 or ±1): it is predicted
    by the unknown-speaker model instead, fitted under global normalisation
    (:func:`vocalab.training.fit_unknown_speaker_model`).

    Returns the mask of recordings standardised on their own, and per recording how it is
    normalised, in words.
    """
    keys = np.array(["" if g is None else str(g) for g in groups], dtype=object)
    counts = {k: int((keys == k).sum()) for k in set(keys)}
    own = np.array([k != "" and counts[k] >= min_files for k in keys], dtype=bool)
    how = [f"speaker '{k}' ({counts[k]} files)" if o else
           ("unknown-speaker model (speaker unknown)" if k == "" else
            f"unknown-speaker model ('{k}' has {counts[k]} of the {min_files} files needed)")
           for k, o in zip(keys, own)]
    return own, how
