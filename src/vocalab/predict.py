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

from vocalab.datasets.base import SCANNED_EXTENSIONS
from vocalab.errors import ParamsError, VocalabError
from vocalab.features.compute import extract_files
from vocalab.features.fusion import join_pooled
from vocalab.features.registry import writer_of
from vocalab.features.store import StoreMeta, pool_layers
from vocalab.manifest_build import inspect_file
from vocalab.metrics import argmax_labels
from vocalab.models.normalize import MIN_SPEAKER_FILES, own_statistics, speaker_standardise, \
    speaker_standardise_frames
from vocalab.params import from_mapping
from vocalab.training import SplitData, load_model, load_unknown_speaker_models
from vocalab.vad import VADConfig, file_regions


def audio_files(inputs: Sequence[str | Path]) -> tuple[list[Path], dict[Path, str]]:
    """Files given, and the audio files under folders given (sorted); and every other entry found, with why
    it is not predicted (an unsupported type, a broken link or a link loop). Unknown inputs are errors."""
    files: list[Path] = []
    skipped: dict[Path, str] = {}
    for item in map(Path, inputs):
        if item.is_dir():
            found = []
            for path in sorted(item.rglob("*")):
                if path.is_dir():
                    continue
                if not path.is_file():  # a link to nothing, a link loop, a pipe or a socket
                    kind = "a broken link or a link loop" if path.is_symlink() else "not a regular file"
                    skipped[path] = f"unreadable: '{path}' is {kind}"
                elif path.suffix.lower() in SCANNED_EXTENSIONS:
                    found.append(path)
                elif not path.name.startswith("."):
                    skipped[path] = (f"unsupported: '{path}' is not audio vocalab reads "
                                     f"({', '.join(sorted(SCANNED_EXTENSIONS))})")
            if not found:
                raise VocalabError(f"folder '{item}' holds no audio files ({', '.join(sorted(SCANNED_EXTENSIONS))}"
                                   f"{f'; {len(skipped)} other entries' if skipped else ''}).")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise VocalabError(f"'{item}' does not exist. Give an audio file or a folder of them.")
    return files, skipped


def extractor_for(meta: StoreMeta, source: str = "the model's model.json") -> Any:
    """The extractor that wrote a store with this ``meta``, rebuilt from the params it recorded.

    Those params are the model's, not params.yaml's: invalid ones mean the model folder was
    edited or damaged, and the error says so.
    """
    spec = writer_of(meta.feature_set)
    try:
        return spec.from_params(meta.params)
    except ParamsError as err:
        reason = str(err).split(" Fix it in params.yaml")[0]
        raise VocalabError(f"{source} records {spec.section} params that are not valid ({reason}): the file was "
                           f"edited or is damaged, params.yaml is not involved. Retrain: dvc repro train") from None


def speech_regions(meta: StoreMeta, paths: list[Path], cache: dict[str, Any],
                   source: str) -> list[tuple[float, float]] | None:
    """Each file's speech region, found as the ``vad`` stage found those of the store (None: whole files)."""
    if not meta.reads_speech_region:
        return None
    try:
        config = from_mapping(VADConfig, meta.vad or {}, section="vad")
    except ParamsError as err:
        raise VocalabError(f"{source} records vad params that are not valid ({err}): the file was edited or is "
                           f"damaged. Retrain: dvc repro train") from None
    key = repr(("vad", meta.vad))
    if key not in cache:
        cache[key] = [(r.start_s, r.end_s) for r in file_regions([str(p) for p in paths], config)]
    return cache[key]


def _features(meta: StoreMeta, paths: list[Path], layer_pooling: str, sequences: bool,
              cache: dict[str, Any], source: str = "the model's model.json") -> tuple[Any, np.ndarray]:
    """Pooled rows or frame sequences of ``paths``, as the store held them, and which files have any.

    A file the extractor gives no frames (too short for it) has a row of zeros and
    ``False`` in the returned mask; it gets no prediction.
    """
    if meta.is_fused:
        parts = [_features(part, paths, layer_pooling, False, cache, source) for part in meta.components]
        values = join_pooled([p.astype(np.float32).astype(np.float64) for p, _ in parts], list(meta.components))
        return values, np.logical_and.reduce([ok for _, ok in parts])
    key = repr((meta.feature_set, meta.params))
    if key not in cache:
        cache[key] = extract_files(extractor_for(meta, source), [str(p) for p in paths],
                                   speech_regions(meta, paths, cache, source))[meta.feature_set]
    frames, lengths, pooled = cache[key]
    ok = np.asarray(lengths) > 0
    if sequences:
        return [np.asarray(f, dtype=np.float32) for f in np.split(frames, np.cumsum(lengths)[:-1])], ok
    return pool_layers(pooled, meta, layer_pooling), ok


def usable_files(paths: list[Path]) -> tuple[list[Path], dict[Path, str]]:
    """The files that pass the manifest's acceptance rules, and why each other one does not."""
    usable, problems = [], {}
    for path in paths:
        _, reject = inspect_file(path)
        if reject is None:
            usable.append(path)
        else:
            problems[path] = f"{reject[0]}: {reject[1]}"
    return usable, problems


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
    """``file, speaker, label, p_<class>..., normalised_by, problem`` for every audio file in ``inputs``.

    Every file passes the manifest's acceptance rules first (decodable, not empty, not
    digital silence, finite, at least ``vocalab.manifest.MIN_DURATION_S`` long); a file that fails them,
    or that the extractor gives no features, gets no label and says why in ``problem``,
    while the other files are still predicted.

    A model trained with ``train.normalize: speaker`` standardises each speaker's
    features with that speaker's own statistics. Files are grouped into speakers by
    ``speaker`` (all files one speaker) or ``speaker_pattern`` (a regex with a
    ``speaker`` group, searched in each file name); a speaker with fewer than
    ``min_speaker_files`` files, or a file of an unknown speaker (neither option), is
    predicted by the unknown-speaker model instead (the same model fitted under global
    normalisation; its held-out UAR is ``unknown_speaker`` in the evaluate stage's details
    file), and the ``normalised_by`` column says which was used. Labels are the models'
    own decisions, averaged over the folds of a ``speaker_kfold`` model.
    """
    if min_speaker_files < 2:
        raise VocalabError(f"--min-speaker-files {min_speaker_files}: statistics need at least 2 files.")
    models, info = load_model(Path(model_dir))
    paths, skipped = audio_files(inputs)
    groups_of = dict(zip(paths, speaker_groups(paths, speaker, speaker_pattern)))
    usable, problems = usable_files(paths)
    problems.update(skipped)
    paths = [*paths, *skipped]  # the entries not predicted come after the files, each with its reason
    groups_of.update(dict.fromkeys(skipped))
    labels = info.labels
    rows = pd.DataFrame({"file": [str(p) for p in paths],
                         "speaker": ["" if groups_of[p] is None else groups_of[p] for p in paths]})
    if usable:
        values, ok = _features(info.features, usable, info.train.layer_pooling, info.train.reads_frames, {},
                               f"'{Path(model_dir) / 'model.json'}'")
        for path in (p for p, good in zip(usable, ok) if not good):
            problems[path] = f"no_features: {info.features.feature_set} gives no features for '{path}' " \
                             f"(too short for this extractor)"
        kept = [p for p, good in zip(usable, ok) if good]
        values = [v for v, good in zip(values, ok) if good] if info.train.reads_frames else values[ok]
        if kept:
            rows = rows.merge(_predict_usable(models, info, Path(model_dir), kept, values,
                                              [groups_of[p] for p in kept], min_speaker_files),
                              on="file", how="left")
    rows["problem"] = [problems.get(p, "") for p in paths]
    return rows


def _predict_usable(models: list, info: Any, model_dir: Path, paths: list[Path], values: Any,
                    groups: list[str | None], min_speaker_files: int) -> pd.DataFrame:
    """Labels and probabilities of the files that have features."""
    names = [str(p) for p in paths]
    speakers = ["" if g is None else g for g in groups]
    how = None
    if info.train.normalize == "speaker":
        own, how = own_statistics(groups, min_files=min_speaker_files)
    else:
        own = np.ones(len(paths), dtype=bool)  # global: the model's own training statistics, for every file
    scores = np.zeros((len(paths), len(info.labels)))
    proba = np.zeros((len(paths), len(info.labels)))
    for rows, unknown in ((own, False), (~own, True)):
        idx = np.flatnonzero(rows)
        if not len(idx):
            continue
        part = [values[i] for i in idx] if info.train.reads_frames else values[idx]
        if info.train.normalize == "speaker" and not unknown:
            keys = [speakers[i] for i in idx]
            part = speaker_standardise_frames(part, keys) if info.train.reads_frames else \
                speaker_standardise(part, keys)
        if info.reads_vectors:  # each file's pooled row, one step of the head's input
            part = [row[None, :].astype(np.float32) for row in part]
        fold_models = load_unknown_speaker_models(model_dir, info) if unknown else models
        data = SplitData(np.array([""] * len(idx)), [names[i] for i in idx], [speakers[i] for i in idx],
                         features=None if info.is_sequence else part, sequences=part if info.is_sequence else None)
        # each fold model's own decision scores, averaged: with one model, exactly its decision
        scores[idx] = np.mean([model.decision_scores(data) for _, model in fold_models], axis=0)
        proba[idx] = np.mean([model.predict_proba(data) for _, model in fold_models], axis=0)
    table = pd.DataFrame({"file": names, "label": argmax_labels(scores, info.labels)})
    for k, label in enumerate(info.labels):
        table[f"p_{label}"] = np.round(proba[:, k], 4)
    if how is not None:
        table["normalised_by"] = how
    return table
