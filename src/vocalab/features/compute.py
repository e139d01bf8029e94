"""The computation every backend runs on a shard of files: decode, extract, check, cut into cache entries.

The local process pool and Dask workers (:mod:`.backends`) run the same functions
here, and ``vocalab predict`` runs :func:`extract_files` on the files it is given.
They touch no store and no cache: they return arrays.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from vocalab.audio import cut_region, load_audio
from vocalab.errors import AudioError
from vocalab.features.base import Extractor
from vocalab.features.cache import Entry
from vocalab.features.store import Output, pool


#: each file's ``(start_s, end_s)`` speech region, for an extractor that reads regions; None: whole files
Regions = Optional[Sequence[tuple[float, float]]]


def _extract_signals(extractor: Extractor, paths: Sequence[str], signals: list[np.ndarray]) -> list[Any]:
    try:
        return extractor.extract_batch(signals)
    except AudioError:
        for path, samples in zip(paths, signals):  # name the file that fails
            try:
                extractor.extract_batch([samples])
            except AudioError as err:
                raise AudioError(f"'{path}': {err}") from err
        raise


def _by_output(result: Any, outputs: Sequence[Output]) -> Mapping[str, Any]:
    """One signal's result as output name -> frames: an extractor of one store may return its frames alone."""
    if isinstance(result, Mapping):
        return result
    if len(outputs) != 1:
        raise TypeError(f"an extractor of {len(outputs)} stores returns a dict of them, got {type(result).__name__}")
    return {outputs[0].name: result}


def _checked(output: Output, path: str, frames: np.ndarray) -> np.ndarray:
    """``frames`` cast to the output's storage dtype; NaN, inf and overflow name the file."""
    if frames.ndim != 2 or frames.shape[1] != output.dim:
        raise AudioError(f"'{path}': {output.name} frames have shape {frames.shape}, expected (t, {output.dim}).")
    if not np.isfinite(frames).all():
        raise AudioError(f"'{path}': {output.name} features contain NaN or inf. Check this file's audio.")
    with np.errstate(over="ignore"):  # overflow is reported below, with the file's name
        stored = frames.astype(output.frames_dtype, copy=False)
    if not np.isfinite(stored).all():
        raise AudioError(
            f"'{path}': {output.name} features exceed the range of {output.frames_dtype} "
            f"(largest magnitude {np.abs(frames).max():.3g}). Store them as float32 "
            f"(the extractor's frames_dtype param)."
        )
    return stored


def _checked_row(output: Output, path: str, row: Any, width: int) -> np.ndarray:
    """An utterance's own pooled features (``pooled: functionals``); NaN and inf name the file."""
    row = np.asarray(row, dtype=np.float64)
    if row.shape != (width,):
        raise AudioError(f"'{path}': {output.name} pooled features have shape {row.shape}, expected ({width},).")
    if not np.isfinite(row).all():
        raise AudioError(f"'{path}': {output.name} pooled features contain NaN or inf. Check this file's audio.")
    return row.astype(np.float32)


def extract_files(extractor: Extractor, paths: Sequence[str], regions: Regions = None,
                  ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode and extract each file (of each file, its ``[start_s, end_s)`` region where ``regions`` are given).

    Returns
    -------
    dict
        Output name -> ``(frames, lengths, pooled)``:

        frames : np.ndarray [shape=(sum of t, dim), dtype=the output's frames_dtype]
        lengths : np.ndarray [shape=(n_files,), int64]; 0 where a file has no frames
        pooled : np.ndarray [shape=(n_files, n_pooled), float32]
            Mean and std of each file's frames, taken before the cast to ``frames_dtype``
            (zeros where a file has no frames); for an output whose meta says ``pooled:
            functionals``, the extractor's own utterance-level row (its ``extract`` then
            returns ``(frames, row)`` for that output).
    """
    outputs = extractor.outputs()
    signals = [load_audio(path, sampling_rate=extractor.sampling_rate)[0] for path in paths]
    if regions is not None:
        signals = [cut_region(s, extractor.sampling_rate, start, end) for s, (start, end) in zip(signals, regions)]
    results = [_by_output(result, outputs) for result in _extract_signals(extractor, paths, signals)]
    shards = {}
    for output in outputs:
        blocks, lengths = [], []
        functionals = output.meta.get("pooled") == "functionals"
        width = len(output.meta["pooled_names"]) if functionals else 2 * output.dim
        pooled = np.zeros((len(paths), width), dtype=np.float32)
        for k, (path, result) in enumerate(zip(paths, results)):
            if functionals:
                frames, row = result[output.name]
                frames = np.asarray(frames)
            else:
                frames = np.asarray(result[output.name])
            if len(frames):
                blocks.append(_checked(output, path, frames))
                pooled[k] = _checked_row(output, path, row, width) if functionals else pool(frames)
            lengths.append(len(frames))
        stacked = np.concatenate(blocks) if blocks else np.zeros((0, output.dim), dtype=output.frames_dtype)
        shards[output.name] = (stacked, np.asarray(lengths, dtype=np.int64), pooled)
    return shards


def extract_entries(extractor: Extractor, paths: Sequence[str], regions: Regions = None) -> list[Entry]:
    """Decode and extract each file (or region): one cache entry per file (every output's frames and pooled row)."""
    shards = extract_files(extractor, paths, regions)
    entries = []
    for k in range(len(paths)):
        outputs = {}
        for name, (frames, lengths, pooled) in shards.items():
            start = int(lengths[:k].sum())
            outputs[name] = (frames[start:start + int(lengths[k])], pooled[k])
        entries.append(Entry(outputs))
    return entries
