"""Run a feature extractor over a manifest: parallel, with a progress bar, resumable.

The extractor is any picklable object with ``name``, ``sampling_rate``,
``feature_names``, ``dim``, ``frames_dtype``, ``meta()`` and a pure
``extract(samples, sampling_rate) -> (t, dim)``. It may add ``extract_batch(signals)``
(several signals at once, for models that batch), ``worker_setup(n_workers)`` (its
own thread budget), ``start_method``, ``preferred_workers`` and ``shard_size``.

An extractor that feeds several stores from one pass over the audio defines
``outputs() -> list[Output]``; its ``extract``/``extract_batch`` then return, per
signal, a dict from output name to frames. An output whose meta declares
``pooled: functionals`` (with ``pooled_names``) gets ``(frames, row)`` instead:
utterance-level features of its own, stored as the pooled features in place of the
frames' mean and std. An output with no frames for an
utterance leaves that utterance out of its store, and the store's meta lists it
under ``absent_utt_ids``: nothing goes missing unrecorded.

This module owns all file I/O:
each file is decoded and resampled once, in a worker process, and results are
written as shards to a scratch folder keyed by the extractor's parameters, so an
interrupted run picks up where it stopped. The final store is assembled from the
shards and the scratch folder is removed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from vocalab.audio import load_audio
from vocalab.errors import AudioError
from vocalab.features.store import pool, write_store
from vocalab.parallel import default_workers, die_with_parent

if TYPE_CHECKING:  # pandas is heavy to import in every worker process
    import pandas as pd

DEFAULT_SCRATCH = Path("data/.scratch")


class Extractor(Protocol):
    name: str
    sampling_rate: int
    feature_names: list[str]
    dim: int
    frames_dtype: str

    def meta(self) -> dict[str, Any]: ...

    def extract(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Output:
    """One feature store that an extractor writes."""

    name: str
    dim: int
    frames_dtype: str
    meta: dict[str, Any]


def outputs_of(extractor: Extractor) -> list[Output]:
    """The stores ``extractor`` writes: its ``outputs()``, else one named after it."""
    outputs = getattr(extractor, "outputs", None)
    if outputs is not None:
        return list(outputs())
    return [Output(extractor.name, extractor.dim, extractor.frames_dtype, extractor.meta())]


@dataclass(frozen=True)
class ExtractionReport:
    n_utterances: int
    audio_s: float
    wall_s: float
    workers: int
    resumed_shards: int
    absent: dict[str, int] = field(default_factory=dict)  # output -> utterances without frames

    @property
    def audio_s_per_s(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else float("inf")

    def line(self, name: str) -> str:
        absent = "".join(f", {n} utterance(s) without {output} frames" for output, n in self.absent.items() if n)
        return (
            f"{name}: {self.n_utterances} utterances, {self.audio_s:.1f} s of audio in "
            f"{self.wall_s:.2f} s ({self.audio_s_per_s:.0f} audio-s/s, {self.workers} worker(s), "
            f"{self.resumed_shards} shard(s) resumed{absent})"
        )


class _AudioProgress:
    """A tqdm bar counted in whole seconds of audio, so its rate reads audio-s/s."""

    def __init__(self, total_s: float, *, desc: str, disable: bool) -> None:
        self._done_s = 0.0
        self._bar = tqdm(total=int(round(total_s)), unit="audio-s", desc=desc, disable=disable,
                         dynamic_ncols=True)

    def advance(self, audio_s: float) -> None:
        before = int(round(self._done_s))
        self._done_s += audio_s
        self._bar.update(min(int(round(self._done_s)), self._bar.total) - before)

    def close(self) -> None:
        self._bar.close()


def _extract_signals(extractor: Extractor, paths: Sequence[str], signals: list[np.ndarray]) -> list[Any]:
    extract_batch = getattr(extractor, "extract_batch", None)
    if extract_batch is None:
        outputs = []
        for path, samples in zip(paths, signals):
            try:
                outputs.append(extractor.extract(samples, extractor.sampling_rate))
            except AudioError as err:
                raise AudioError(f"'{path}': {err}") from err
        return outputs
    try:
        return extract_batch(signals)
    except AudioError:
        for path, samples in zip(paths, signals):  # name the file that fails
            try:
                extract_batch([samples])
            except AudioError as err:
                raise AudioError(f"'{path}': {err}") from err
        raise


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


def extract_files(extractor: Extractor, paths: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode and extract each file.

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
    outputs = outputs_of(extractor)
    signals = [load_audio(path, sampling_rate=extractor.sampling_rate)[0] for path in paths]
    results = _extract_signals(extractor, paths, signals)
    if getattr(extractor, "outputs", None) is None:
        results = [{outputs[0].name: frames} for frames in results]
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


# fork starts workers in milliseconds (spawn re-imports numpy/scipy in each, ~0.5 s);
# where fork is unavailable or unsafe (macOS, Windows) use spawn. An extractor can
# ask for another start method (torch-based ones need spawn).
_START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"

_WORKER: dict[str, Any] = {}


def _setup_threads(extractor: Extractor, n_workers: int) -> Any:
    """Each worker's thread budget: the extractor's own rule, else one BLAS/OpenMP thread.

    One thread per worker keeps N workers on N cores from oversubscribing them (a
    forked worker would otherwise inherit the parent's thread pool).
    """
    setup = getattr(extractor, "worker_setup", None)
    if setup is not None:
        setup(n_workers)
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _init_worker(extractor: Extractor, n_workers: int) -> None:
    die_with_parent()  # a killed stage leaves no worker behind
    # the extractor arrives once per worker (a torch model is loaded once, not per shard)
    _WORKER["extractor"] = extractor
    _WORKER["threads"] = _setup_threads(extractor, n_workers)


def _run_shard(extractor: Extractor, paths: Sequence[str], target: str) -> str:
    arrays = {}
    for name, (frames, lengths, pooled) in extract_files(extractor, paths).items():
        arrays.update({f"{name}.frames": frames, f"{name}.lengths": lengths, f"{name}.pooled": pooled})
    tmp = target + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, target)
    return target


def _run_shard_in_worker(paths: Sequence[str], target: str) -> str:
    return _run_shard(_WORKER["extractor"], paths, target)


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_key(path: str) -> list[Any]:
    stat = os.stat(path)
    return [path, stat.st_size, stat.st_mtime_ns]


def extract_manifest(
    manifest: pd.DataFrame,
    extractor: Extractor,
    out_dir: Path | Mapping[str, Path],
    *,
    workers: int | None = None,
    shard_size: int | None = None,
    scratch_root: Path = DEFAULT_SCRATCH,
    progress: bool = True,
    extra_meta: Mapping[str, dict[str, Any]] | None = None,
) -> ExtractionReport:
    """Extract every manifest utterance into the feature store at ``out_dir``.

    ``out_dir`` is one folder, or for an extractor with several outputs a mapping
    from output name to folder. Utterances are stored in manifest order. Shards
    already present in the scratch folder (same extractor parameters, same files)
    are reused. ``workers`` and ``shard_size`` default to the extractor's
    ``preferred_workers`` and ``shard_size`` when it has them, else to the CPU count
    and 32 files. ``extra_meta`` (output name -> dict) is added to a store's
    ``meta.json`` without entering the scratch fingerprint.
    """
    start_time = time.perf_counter()
    if workers is None:
        workers = getattr(extractor, "preferred_workers", None) or default_workers()
    if shard_size is None:
        shard_size = getattr(extractor, "shard_size", 32)
    paths = manifest["path"].astype(str).tolist()
    durations = manifest["duration_s"].to_numpy(dtype=np.float64)
    outputs = outputs_of(extractor)
    if isinstance(out_dir, Mapping):
        if set(out_dir) != {o.name for o in outputs}:
            raise ValueError(f"out_dir names {sorted(out_dir)}, but {extractor.name} writes "
                             f"{sorted(o.name for o in outputs)}")
        out_dirs = {name: Path(d) for name, d in out_dir.items()}
    elif len(outputs) == 1:
        out_dirs = {outputs[0].name: Path(out_dir)}
    else:
        raise ValueError(f"{extractor.name} writes {len(outputs)} stores: pass out_dir as a mapping")
    meta = [o.meta for o in outputs]
    scratch = Path(scratch_root) / f"{extractor.name}-{_fingerprint(meta)}"
    # shards of this extractor's other parameters are from runs that never finished (or whose outputs
    # DVC restored from its run cache): they would only accumulate
    for stale in Path(scratch_root).glob(f"{extractor.name}-*"):
        if stale != scratch and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)

    shards = []
    for index, begin in enumerate(range(0, len(paths), shard_size)):
        shard_paths = paths[begin:begin + shard_size]
        key = _fingerprint([_file_key(p) for p in shard_paths])
        target = scratch / f"shard-{index:06d}-{key}.npz"
        shards.append((shard_paths, str(target), float(durations[begin:begin + shard_size].sum())))
    pending = [s for s in shards if not Path(s[1]).is_file()]
    resumed = len(shards) - len(pending)
    resumed_audio_s = sum(s[2] for s in shards) - sum(s[2] for s in pending)

    bar = _AudioProgress(float(durations.sum()), desc=f"extract {extractor.name}", disable=not progress)
    bar.advance(resumed_audio_s)
    if workers <= 1 or len(pending) <= 1:
        # the same thread rule as in the workers
        with _setup_threads(extractor, 1):
            for shard_paths, target, audio_s in pending:
                _run_shard(extractor, shard_paths, target)
                bar.advance(audio_s)
    else:
        context = multiprocessing.get_context(getattr(extractor, "start_method", _START_METHOD))
        n_workers = min(workers, len(pending))
        with cf.ProcessPoolExecutor(
            max_workers=n_workers, mp_context=context, initializer=_init_worker,
            initargs=(extractor, n_workers),
        ) as executor:
            futures = {executor.submit(_run_shard_in_worker, p, t): a for p, t, a in pending}
            try:
                for future in cf.as_completed(futures):
                    future.result()
                    bar.advance(futures[future])
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    bar.close()

    shard_files = [s[1] for s in shards]
    utt_ids = manifest["utt_id"].astype(str).tolist()
    absent_counts = {}
    for output in outputs:
        lengths = []
        for target in shard_files:
            with np.load(target) as data:
                lengths.append(data[f"{output.name}.lengths"])
        present = np.concatenate(lengths) > 0 if lengths else np.zeros(0, dtype=bool)
        absent = [u for u, ok in zip(utt_ids, present) if not ok]
        absent_counts[output.name] = len(absent)

        def blocks(name: str = output.name):
            for target in shard_files:
                with np.load(target) as data:
                    keep = data[f"{name}.lengths"] > 0
                    yield data[f"{name}.frames"], data[f"{name}.lengths"][keep], data[f"{name}.pooled"][keep]

        write_store(
            out_dirs[output.name], utt_ids=[u for u, ok in zip(utt_ids, present) if ok], frame_blocks=blocks(),
            total_frames=int(sum(int(n.sum()) for n in lengths)), dim=output.dim, dtype=output.frames_dtype,
            meta={**output.meta, **(extra_meta or {}).get(output.name, {}), "absent_utt_ids": absent},
        )
    shutil.rmtree(scratch)
    if Path(scratch_root).is_dir() and not any(Path(scratch_root).iterdir()):
        Path(scratch_root).rmdir()
    return ExtractionReport(
        n_utterances=len(paths), audio_s=float(durations.sum()),
        wall_s=time.perf_counter() - start_time, workers=workers, resumed_shards=resumed, absent=absent_counts,
    )
