"""Run a feature extractor over a manifest: plan, execute, assemble.

The extractor follows the contract of :class:`vocalab.features.base.Extractor`; the
computation the workers run on each shard of files is :mod:`.compute`.

Three steps, each with one job:

1. **plan**: each manifest row's cache key (its audio's content hash, under the
   extractor's fingerprint, :mod:`.cache`); the files whose key is not cached are the work.
2. **execute**: a backend (:mod:`.backends`: a local process pool, or Dask) decodes
   and extracts the work in shards; each result becomes one cache entry per file,
   written atomically with a checksum. An interrupted run keeps what it finished.
3. **assemble**: cache entries are streamed in manifest order into the store, so the
   store is a function of the manifest and the cache alone: a warm run and a cold
   run write the same bytes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from vocalab.audio import audio_hash
from vocalab.errors import FeatureStoreError
from vocalab.features import backends, pack
from vocalab.features.base import SPEECH_REGION, Extractor
from vocalab.features.cache import Entry, FeatureCache, cache_root, code_version, fingerprint
from vocalab.features.pack import Pack, PackedOutput
from vocalab.features.store import Output, write_store
from vocalab.parallel import default_workers

if TYPE_CHECKING:  # pandas is heavy to import in every worker process
    import pandas as pd

@dataclass(frozen=True)
class ExtractionReport:
    n_utterances: int
    audio_s: float
    wall_s: float
    workers: int
    cached: int  # files whose features came from the cache
    extracted: int  # files extracted by this run
    absent: dict[str, int] = field(default_factory=dict)  # output -> utterances without frames
    corrupt: int = 0  # damaged cache entries found, deleted and recomputed
    pack_damaged: bool = False  # the last store's pack failed its checks and was dropped (entries used instead)
    backend: str = "local"

    @property
    def audio_s_per_s(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else float("inf")

    def line(self, name: str) -> str:
        absent = "".join(f", {n} utterance(s) without {output} frames" for output, n in self.absent.items() if n)
        return (
            f"{name}: {self.n_utterances} utterances, {self.audio_s:.1f} s of audio in "
            f"{self.wall_s:.2f} s ({self.audio_s_per_s:.0f} audio-s/s; {self.extracted} file(s) extracted by "
            f"{self.workers} {self.backend} worker(s), {self.cached} from the cache"
            f"{f', {self.corrupt} damaged cache entries recomputed' if self.corrupt else ''}"
            f"{', a damaged pack of the last store dropped' if self.pack_damaged else ''}{absent})"
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


#: one file to extract: its path, cache key, audio seconds, and speech region (None: the whole file)
Work = tuple[str, str, float, "tuple[float, float] | None"]


@dataclass(frozen=True)
class Plan:
    """What a run has to do: each row's cache key, and the files whose key is not cached."""

    keys: list[str]  # per manifest row
    work: list[Work]  # one per missing key, in manifest order
    cached: int  # rows whose key is cached


def stored_outputs(extractor: Extractor) -> list[Output]:
    """The extractor's outputs, each meta saying whether it read speech regions (so the fingerprint covers it)."""
    return [replace(o, meta={**o.meta, "reads_speech_region": extractor.reads_speech_region})
            for o in extractor.outputs()]


def open_cache(extractor: Extractor, root: Path | None = None) -> FeatureCache:
    """The cache of this extractor's fingerprint: its outputs' metadata and its code version."""
    metas = [o.meta for o in stored_outputs(extractor)]
    code = code_version(type(extractor).__module__)
    return FeatureCache(cache_root() if root is None else Path(root), extractor.name, fingerprint(metas, code),
                        info={"extractor": extractor.name, "outputs": metas, "code": code})


def audio_keys(manifest: pd.DataFrame) -> list[str]:
    """The manifest's ``audio_hash`` column, else each file's hash (files outside a manifest, e.g. predict)."""
    if "audio_hash" in manifest.columns and manifest["audio_hash"].notna().all():
        return manifest["audio_hash"].astype(str).tolist()
    return [audio_hash(p) for p in manifest["path"].astype(str)]


def speech_regions(manifest: pd.DataFrame, extractor: Extractor) -> list[tuple[float, float]] | None:
    """Each row's speech region, for an extractor that reads regions (None for one that reads whole files)."""
    if not extractor.reads_speech_region:
        return None
    missing = [c for c in SPEECH_REGION if c not in manifest.columns]
    if missing or manifest[list(SPEECH_REGION)].isna().any().any():
        raise FeatureStoreError(f"{extractor.name} reads each utterance's speech region, but the manifest has no "
                                f"complete {', '.join(SPEECH_REGION)} columns. Run the 'vad' stage first "
                                f"(dvc repro vad) and pass its table.")
    return list(zip(manifest[SPEECH_REGION[0]].astype(float), manifest[SPEECH_REGION[1]].astype(float)))


def region_key(key: str, region: tuple[float, float] | None) -> str:
    """The cache key of an audio file's region: its content and the region's bounds (the file's own key if None)."""
    if region is None:
        return key
    return hashlib.blake2b(f"{key}:{region[0]:.4f}:{region[1]:.4f}".encode(), digest_size=16).hexdigest()


def plan(manifest: pd.DataFrame, cache: FeatureCache, packed: Pack | None = None,
         regions: list[tuple[float, float]] | None = None) -> Plan:
    rows = regions or [None] * len(manifest)
    keys = [region_key(key, region) for key, region in zip(audio_keys(manifest), rows)]
    paths = manifest["path"].astype(str).tolist()
    durations = manifest["duration_s"].to_numpy(dtype=np.float64)
    work, seen = [], set()
    for path, key, duration, region in zip(paths, keys, durations, rows):
        if key not in seen:
            seen.add(key)
            if not (packed is not None and packed.covers(key)) and not cache.has(key):
                work.append((path, key, float(duration), region))
    missing = {work_key for _, work_key, _, _ in work}
    return Plan(keys, work, sum(1 for key in keys if key not in missing))


def entry_lengths(keys: Iterable[str], cache: FeatureCache) -> tuple[dict[str, dict[str, int]], set[str]]:
    """Each entry's frame count per output, from its header; and the keys whose entry is missing or damaged."""
    lengths, damaged = {}, set()
    for key in dict.fromkeys(keys):
        found = cache.read_lengths(key)
        if found is None:
            damaged.add(key)
        else:
            lengths[key] = found
    return lengths, damaged


class DamagedEntry(Exception):
    """A cache entry failed its checksum while the store was being written."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Assembled:
    """What :func:`assemble` wrote, per output: the audio hash of each stored row, and those left out."""

    keys: dict[str, list[str]]
    absent_keys: dict[str, list[str]]

    @property
    def absent_counts(self) -> dict[str, int]:
        return {name: len(keys) for name, keys in self.absent_keys.items()}


def assemble(manifest: pd.DataFrame, keys: Sequence[str], lengths_of: Mapping[str, Mapping[str, int]],
             cache: FeatureCache, outputs: Sequence[Output], out_dirs: Mapping[str, Path],
             extra_meta: Mapping[str, dict[str, Any]] | None, packed: Pack | None = None) -> Assembled:
    """Stream each row's features, in manifest order, into each output's store.

    A row comes from ``packed`` (the last store of this fingerprint, taken in runs of
    consecutive rows) where it holds the row's audio, else from its cache entry.
    """
    utt_ids = manifest["utt_id"].astype(str).tolist()
    lengths = {o.name: [lengths_of[key][o.name] for key in keys] for o in outputs}
    stored, absent_keys = {}, {}
    for output in outputs:
        present = [n > 0 for n in lengths[output.name]]
        absent = [u for u, ok in zip(utt_ids, present) if not ok]
        stored[output.name] = [k for k, ok in zip(keys, present) if ok]
        absent_keys[output.name] = [k for k, ok in zip(keys, present) if not ok]
        source = packed.outputs[output.name] if packed is not None else None
        blocks = _blocks(cache, output.name, stored[output.name], lengths_of, source)
        write_store(
            out_dirs[output.name], utt_ids=[u for u, ok in zip(utt_ids, present) if ok], frame_blocks=blocks,
            total_frames=int(sum(lengths[output.name])), dim=output.dim, dtype=output.frames_dtype,
            meta={**output.meta, **(extra_meta or {}).get(output.name, {}), "absent_utt_ids": absent},
        )
    return Assembled(stored, absent_keys)


def _blocks(cache: FeatureCache, name: str, keys: Sequence[str], lengths_of: Mapping[str, Mapping[str, int]],
            packed: PackedOutput | None, rows: int = 256):
    """``(frames, lengths, pooled)`` blocks of about ``rows`` utterances, for the rows of ``keys`` in order."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    count, i = 0, 0
    while i < len(keys):
        first = packed.rows.get(keys[i]) if packed is not None else None
        if first is not None:  # a run of rows that follow each other in the pack: one slice
            last = first + 1
            while (i + last - first < len(keys) and last < len(packed.keys) and last - first < rows
                   and packed.keys[last] == keys[i + last - first]):
                last += 1
            begin, end = packed.offsets[first], packed.offsets[last]
            parts.append((packed.frames.rows(begin, end), np.diff(packed.offsets[first:last + 1]),
                          packed.pooled[first:last]))
            count += last - first
            i += last - first
        else:
            entry = _entry(cache, keys[i])
            if entry.lengths() != dict(lengths_of[keys[i]]):  # not the entry whose header was read: recompute
                raise DamagedEntry(keys[i])
            frames, row = entry.outputs[name]
            parts.append((frames, np.array([len(frames)]), row[None]))
            count += 1
            i += 1
        if count >= rows or i == len(keys):
            yield tuple(np.concatenate(arrays) for arrays in zip(*parts))
            parts, count = [], 0


def _entry(cache: FeatureCache, key: str) -> Entry:
    entry = cache.get(key)
    if entry is None:
        raise DamagedEntry(key)
    return entry


def shard_bounds(n: int, shard_size: int, workers: int) -> list[tuple[int, int]]:
    """``(begin, end)`` of each shard of ``n`` files: at most ``shard_size`` files each, sizes differing by at most
    one, and with several workers as many shards as a multiple of them, so that none idles while another works
    through the last ones (150 files in shards of 32 on 2 workers are 3 shards against 2; 6 of 25 are 3 and 3)."""
    count = -(-n // shard_size)
    if workers > 1:
        count = min(n, -(-count // workers) * workers)
    base, extra = divmod(n, count)
    bounds, begin = [], 0
    for i in range(count):
        end = begin + base + (i < extra)
        bounds.append((begin, end))
        begin = end
    return bounds


def execute(extractor: Extractor, work: Sequence[Work], cache: FeatureCache, *,
            workers: int, shard_size: int, backend: str, scheduler: str | None,
            bar: _AudioProgress) -> tuple[int, dict[str, dict[str, int]]]:
    """Extract ``work`` on ``backend`` into the cache; returns the workers used and each new entry's frame counts."""
    lengths: dict[str, dict[str, int]] = {}
    if not work:
        return 0, lengths
    shards = []
    for begin, end in shard_bounds(len(work), shard_size, workers):
        part = work[begin:end]
        regions = [r for _, _, _, r in part] if extractor.reads_speech_region else None
        shards.append(([p for p, _, _, _ in part], [k for _, k, _, _ in part], sum(a for _, _, a, _ in part),
                       regions))

    def on_result(keys: Sequence[str], counts: list[dict[str, int]], audio_s: float) -> None:
        lengths.update(zip(keys, counts))
        bar.advance(audio_s)

    if backend == "dask":
        used = backends.run_dask(extractor, shards, cache.put_many, on_result, workers=workers, scheduler=scheduler)
    else:
        used = backends.run_local(extractor, shards, cache.put_many, on_result, workers=workers)
    return used, lengths


def _assemble_checked(manifest: pd.DataFrame, keys: Sequence[str], lengths: dict[str, dict[str, int]],
                      cache: FeatureCache, outputs: Sequence[Output], out_dirs: Mapping[str, Path],
                      extra_meta: Mapping[str, dict[str, Any]] | None, packed: Pack | None,
                      redo: Callable[[Iterable[str]], None]) -> Assembled:
    """:func:`assemble`, once every row's frame counts are known (from this run, the pack or the
    entries' headers); an entry found damaged is recomputed by ``redo`` (which adds its counts)."""
    if packed is not None:
        lengths.update(packed.lengths(k for k in dict.fromkeys(keys) if k not in lengths))
    found, damaged = entry_lengths((k for k in keys if k not in lengths), cache)
    lengths.update(found)
    if damaged:
        redo(damaged)
    for attempt in range(3):
        try:
            return assemble(manifest, keys, lengths, cache, outputs, out_dirs, extra_meta, packed)
        except DamagedEntry as err:  # a checksum failed on the full read
            if attempt == 2:
                raise FeatureStoreError(f"feature cache entries under {cache.folder} are damaged as soon as they "
                                        f"are written; check the disk, or set VOCALAB_CACHE elsewhere.") from err
            redo([err.key])
    raise AssertionError("three attempts either return or raise")


def extract_manifest(
    manifest: pd.DataFrame,
    extractor: Extractor,
    out_dir: Path | Mapping[str, Path],
    *,
    workers: int | None = None,
    shard_size: int | None = None,
    cache_root: Path | None = None,
    backend: str = "local",
    scheduler: str | None = None,
    progress: bool = True,
    extra_meta: Mapping[str, dict[str, Any]] | None = None,
) -> ExtractionReport:
    """Extract every manifest utterance into the feature store at ``out_dir``.

    ``out_dir`` is one folder, or for an extractor with several outputs a mapping
    from output name to folder. Utterances are stored in manifest order. Files
    whose features are in the cache (under ``cache_root``, default
    :func:`~vocalab.features.cache.cache_root`) are not extracted again. ``workers``
    and ``shard_size`` default to the extractor's ``preferred_workers`` and
    ``shard_size`` when it has them, else to the CPU count and 32 files. ``backend``
    is ``local`` or ``dask`` (at ``scheduler``, or a LocalCluster when None).
    ``extra_meta`` (output name -> dict) is added to a store's ``meta.json`` without
    entering the cache fingerprint.
    """
    start_time = time.perf_counter()
    fewer_for_small_jobs = workers is None
    if workers is None:
        workers = extractor.preferred_workers or default_workers()
    if shard_size is None:
        shard_size = extractor.shard_size
    outputs = stored_outputs(extractor)
    out_dirs = _out_dirs(extractor, outputs, out_dir)
    cache = open_cache(extractor, cache_root)
    durations = manifest["duration_s"].to_numpy(dtype=np.float64)
    packed, pack_damaged = pack.load(cache.pack_folder, {o.name: (o.dim, o.frames_dtype) for o in outputs})

    try:
        regions = speech_regions(manifest, extractor)
        todo = plan(manifest, cache, packed, regions)
        bar = _AudioProgress(float(durations.sum()), desc=f"extract {extractor.name}", disable=not progress)
        pending_s = sum(a for _, _, a, _ in todo.work)
        bar.advance(float(durations.sum()) - pending_s)
        if fewer_for_small_jobs and extractor.audio_s_per_worker > 0:  # a worker that costs more to start than
            workers = max(1, min(workers, int(pending_s // extractor.audio_s_per_worker)))  # it saves is not started
        options = dict(workers=workers, shard_size=shard_size, backend=backend, scheduler=scheduler, bar=bar)
        used, lengths = execute(extractor, todo.work, cache, **options)
        first_row = {key: i for i, key in reversed(list(enumerate(todo.keys)))}

        def redo(keys: Iterable[str]) -> None:  # damaged entries are recomputed, never read into a store
            nonlocal used
            work = [(str(manifest["path"].iloc[first_row[k]]), k, 0.0, regions[first_row[k]] if regions else None)
                    for k in sorted(keys, key=first_row.get)]
            n, more = execute(extractor, work, cache, **options)
            used = max(used, n)
            lengths.update(more)

        written = _assemble_checked(manifest, todo.keys, lengths, cache, outputs, out_dirs, extra_meta, packed, redo)
        bar.close()
        repack = not pack.same_rows(packed, written.keys, written.absent_keys)
    finally:
        cache.close()
        if packed is not None:
            packed.close()
    if repack:
        pack.save(cache.pack_folder, out_dirs, written.keys, written.absent_keys)
    cache.record_run(todo.keys)
    absent = written.absent_counts
    return ExtractionReport(
        n_utterances=len(manifest), audio_s=float(durations.sum()), wall_s=time.perf_counter() - start_time,
        workers=used, cached=todo.cached, extracted=len(todo.work), absent=absent, corrupt=cache.corrupt,
        backend=backend, pack_damaged=pack_damaged,
    )


def _out_dirs(extractor: Extractor, outputs: Sequence[Output], out_dir: Path | Mapping[str, Path]) -> dict[str, Path]:
    if isinstance(out_dir, Mapping):
        if set(out_dir) != {o.name for o in outputs}:
            raise ValueError(f"out_dir names {sorted(out_dir)}, but {extractor.name} writes "
                             f"{sorted(o.name for o in outputs)}")
        return {name: Path(d) for name, d in out_dir.items()}
    if len(outputs) == 1:
        return {outputs[0].name: Path(out_dir)}
    raise ValueError(f"{extractor.name} writes {len(outputs)} stores: pass out_dir as a mapping")
