"""The per-utterance feature cache: what an extractor made of one audio file, kept between runs.

An entry is keyed by the audio file's content (:func:`vocalab.audio.audio_hash`, the
manifest's ``audio_hash``) under a folder named by the extractor's fingerprint (its outputs'
parameters and metadata, the code that computes them, and the versions of the
numeric libraries it uses). So a corpus that grows is extracted only where it grew, a
changed parameter misses the cache, and a file renamed or moved is still a hit.

Layout, under ``$VOCALAB_CACHE/features`` (default ``~/.cache/vocalab/features``)::

    <extractor>/<fingerprint>/info.json           what the fingerprint stands for
    <extractor>/<fingerprint>/segments/<id>.seg   the entries of one batch of utterances, back to back
    <extractor>/<fingerprint>/index               one line per segment: each entry's audio hash, offset, length
    <extractor>/<fingerprint>/pack/               the last store it assembled, whole (:mod:`.pack`)
    <extractor>/last-run.json                     the fingerprint and audio hashes its last run used

An entry holds every output's frames and pooled row for one utterance, and carries a
checksum of its bytes. A segment is written to a temporary file and renamed into place
before its index line is appended: a truncated or corrupt entry is detected when read,
and recomputed, never read into a store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vocalab.errors import FeatureStoreError
from vocalab.features.pack import size as folder_size
from vocalab.fetch import cache_dir

MAGIC = b"VLFC1\n"
_DIGEST = 16
#: modules an extractor's code imports that compute none of its numbers: configuration, errors, the
#: registry, the contract's defaults, downloading, worker counts, and this cache's own format. Editing
#: them leaves every feature cache valid.
PLUMBING = ("vocalab.params", "vocalab.errors", "vocalab.imports", "vocalab.parallel", "vocalab.fetch",
            "vocalab.features.registry", "vocalab.features.discovery", "vocalab.features.base",
            "vocalab.features.cache", "vocalab.features.pack")


def cache_root() -> Path:
    """Where feature caches live: ``$VOCALAB_CACHE/features`` (default ``~/.cache/vocalab/features``)."""
    return cache_dir() / "features"


def code_version(module: str, *, src: Path | None = None) -> dict[str, str]:
    """Hashes of the code that computes an extractor's numbers, and the versions of the libraries it uses.

    The code is the extractor's module, audio decoding, pooling, and the vocalab modules
    they import (transitively), plus the computation the workers run (:mod:`.compute`: it
    casts and checks the frames); not the machinery around them (backends, this cache,
    nor :data:`PLUMBING`). The libraries are those this code imports (NumPy, soxr and
    soundfile through audio decoding; torch, openSMILE, ... where an extractor imports
    them). An edit to any of it misses the cache, which costs a recomputation, never a
    stale feature.
    """
    from vocalab.imports import code_files, distribution_versions, file_hashes, source_root, third_party_imports

    package = __name__.rsplit(".", 1)[0]
    src = source_root() if src is None else Path(src)
    files = code_files([module, "vocalab.audio", f"{package}.store", f"{package}.compute"], stop=PLUMBING, src=src)
    # installed versions, imported or not: the same fingerprint in every process
    return {**file_hashes(files, src), **distribution_versions(third_party_imports(files))}


def fingerprint(metas: Sequence[Mapping[str, Any]], code: Mapping[str, str]) -> str:
    blob = json.dumps({"outputs": list(metas), "code": dict(code)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Entry:
    """One utterance's results: output name -> ``(frames, pooled row)``; no frames means absent.

    On disk: a magic line, the BLAKE2b-128 of the rest, the length of a JSON header, the
    header (each array's output, kind, dtype and shape), then the arrays' bytes. The
    header alone gives the frame counts (:func:`read_lengths`), so a store's size is known
    without reading its frames twice.
    """

    outputs: dict[str, tuple[np.ndarray, np.ndarray]]

    def lengths(self) -> dict[str, int]:
        return {name: len(frames) for name, (frames, _) in self.outputs.items()}

    def to_bytes(self) -> bytes:
        header, blobs = [], []
        for name, (frames, pooled) in sorted(self.outputs.items()):
            for kind, array in (("frames", frames), ("pooled", pooled)):
                array = np.ascontiguousarray(array)
                header.append([name, kind, array.dtype.str, list(array.shape)])
                blobs.append(array.tobytes())
        head = json.dumps(header, separators=(",", ":")).encode()
        payload = struct.pack("<I", len(head)) + head + b"".join(blobs)
        return MAGIC + hashlib.blake2b(payload, digest_size=_DIGEST).digest() + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Parse an entry; ``ValueError`` if it is not one, or not whole."""
        if not data.startswith(MAGIC) or len(data) < _PREFIX + 4:
            raise ValueError("not a feature cache entry")
        payload = memoryview(data)[_PREFIX:]
        if hashlib.blake2b(payload, digest_size=_DIGEST).digest() != data[len(MAGIC):_PREFIX]:
            raise ValueError("checksum mismatch (truncated or corrupt)")
        header, cursor = _header(data)
        arrays = {}
        for name, kind, dtype, shape in header:
            dtype, count = np.dtype(dtype), math.prod(shape)
            arrays[(name, kind)] = np.frombuffer(data, dtype, count, cursor).reshape(shape)
            cursor += dtype.itemsize * count
        if cursor != len(data):
            raise ValueError("entry length does not match its header")
        names = sorted({name for name, _ in arrays})
        return cls({name: (arrays[(name, "frames")], arrays[(name, "pooled")]) for name in names})


_PREFIX = len(MAGIC) + _DIGEST


def _header(data: bytes) -> tuple[list, int]:
    """An entry's header and where its arrays begin (``ValueError`` if it cannot be one)."""
    if not data.startswith(MAGIC) or len(data) < _PREFIX + 4:
        raise ValueError("not a feature cache entry")
    (n_head,) = struct.unpack_from("<I", data, _PREFIX)
    if len(data) < _PREFIX + 4 + n_head:
        raise ValueError("header cut short")
    header = json.loads(data[_PREFIX + 4:_PREFIX + 4 + n_head])
    if not isinstance(header, list) or not all(isinstance(item, list) and len(item) == 4 for item in header):
        raise ValueError("malformed header")
    return header, _PREFIX + 4 + n_head


_DAMAGED = (ValueError, KeyError, TypeError, struct.error)


class FeatureCache:
    """The entries of one extractor fingerprint. Picklable: worker processes write entries themselves.

    Entries are written a batch (a shard of files) at a time: one segment file holding the
    batch's entries back to back, and one line appended to the index naming the segment
    and each entry's key, offset and length. A file system then creates one file per 32
    utterances instead of one per utterance (the cost that dominates a cold run on network
    file systems, and on disks whose file creation is slow). The index is read once, then
    only what was appended since: a line torn by a crash is skipped, and its entries are
    extracted again. Where a key has several lines (an entry recomputed after damage),
    the last one counts.
    """

    def __init__(self, root: Path, extractor: str, fingerprint: str, *, info: Mapping[str, Any] | None = None):
        self.root = Path(root)
        self.extractor = extractor
        self.fingerprint = fingerprint
        self.folder = self.root / extractor / fingerprint
        self._segments = str(self.folder / SEGMENTS) + os.sep  # string paths: pathlib costs more than the I/O here
        self._index = str(self.folder / INDEX)
        self.corrupt = 0  # entries found damaged (to be recomputed)
        self.__dict__.update(_unread())
        if info is not None and not (self.folder / "info.json").is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(str(self.folder / "info.json"), (json.dumps(info, indent=2, sort_keys=True, default=str)
                                                           + "\n").encode())

    def __getstate__(self) -> dict[str, Any]:  # workers only write: the index stays here
        return {**self.__dict__, **_unread()}

    @property
    def pack_folder(self) -> Path:
        """Where the last store this fingerprint assembled is kept whole (:mod:`vocalab.features.pack`)."""
        return self.folder / "pack"

    def _refresh(self) -> None:
        """Read the index lines appended since the last read."""
        data = _read_from(self._index, self._read_to)
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._where.update(_latest(_records(data[:end])))
        self._read_to += end
        self._loaded = True

    def locate(self, key: str) -> tuple[Path, int, int] | None:
        """The segment file, offset and length of ``key``'s entry (None: not in the index)."""
        if key not in self._where:
            self._refresh()
        found = self._where.get(key)
        return None if found is None else (Path(self._segments + found[0]), found[1], found[2])

    def keys(self) -> set[str]:
        """The keys the index holds an entry for."""
        self._refresh()
        return set(self._where)

    def has(self, key: str) -> bool:
        if not self._loaded:
            self._refresh()
        return key in self._where

    def _read(self, key: str, size: int | None = None) -> bytes | None:
        """``size`` bytes (default: all) of ``key``'s entry; None when the index or its segment lacks it."""
        if key not in self._where:
            self._refresh()
            if key not in self._where:
                return None
        segment, offset, length = self._where[key]
        if self._open is None or self._open[0] != segment:
            self.close()
            try:
                self._open = (segment, open(self._segments + segment, "rb", buffering=0))  # noqa: SIM115
            except FileNotFoundError:  # a segment lost: its entries count as damaged
                self._damaged(key)
                return None
        data = os.pread(self._open[1].fileno(), length if size is None else min(size, length), offset)
        if size is None and len(data) != length:
            self._damaged(key)
            raise ValueError("entry cut short")
        return data

    def close(self) -> None:
        """Close the segment file kept open for reading."""
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def _damaged(self, key: str) -> None:
        if self._where.pop(key, None) is not None:
            self.corrupt += 1

    def get(self, key: str) -> Entry | None:
        """The entry, or None when it is missing or damaged (a damaged one is forgotten and counted)."""
        try:
            data = self._read(key)
            return None if data is None else Entry.from_bytes(data)
        except _DAMAGED:
            self._damaged(key)
            return None

    def read_lengths(self, key: str) -> dict[str, int] | None:
        """Frame counts per output from an entry's header alone (None: missing, or damaged).

        A truncated entry is caught here by its size; the checksum, which covers the
        whole entry, is checked when the entry is read whole.
        """
        try:
            data = self._read(key, 4096)
            if data is None:
                return None
            length = self._where[key][2]
            if len(data) >= _PREFIX + 4:
                need = _PREFIX + 4 + struct.unpack_from("<I", data, _PREFIX)[0]
                if len(data) < need <= length:
                    data = self._read(key, need)
            header, cursor = _header(data)
            size = cursor + sum(np.dtype(dtype).itemsize * math.prod(shape) for _, _, dtype, shape in header)
            segment_size = os.fstat(self._open[1].fileno()).st_size
            if size != length or self._where[key][1] + length > segment_size:
                raise ValueError("entry length does not match its header")
            return {name: int(shape[0]) for name, kind, _, shape in header if kind == "frames"}
        except _DAMAGED:
            self._damaged(key)
            return None

    def put(self, key: str, entry: Entry) -> dict[str, int]:
        """Write one entry; returns its frame counts."""
        return self.put_many([key], [entry])[0]

    def put_many(self, keys: Sequence[str], entries: Sequence[Entry]) -> list[dict[str, int]]:
        """Write a batch of entries as one segment and one index line; returns their frame counts.

        The segment is complete (written and renamed into place) before the line that
        points into it is appended, in one write, so the index never names an entry that
        is not there to read.
        """
        if not keys:
            return []
        blobs = [entry.to_bytes() for entry in entries]
        data = b"".join(blobs)
        segment = hashlib.blake2b(data, digest_size=16).hexdigest() + ".seg"
        # every batch: a cache folder removed while the run goes on is made again, not a traceback
        os.makedirs(self._segments, exist_ok=True)
        _write_atomic(self._segments + segment, data)
        located, offset = [], 0
        for key, blob in zip(keys, blobs):
            located.append([key, offset, len(blob)])
            offset += len(blob)
        _append(self._index, _record(segment, located))
        self._where.update((key, (segment, at, length)) for key, at, length in located)
        return [entry.lengths() for entry in entries]

    def record_run(self, keys: Iterable[str]) -> None:
        """Remember the audio hashes this run used: ``vocalab cache prune`` keeps their entries."""
        record = {"fingerprint": self.fingerprint, "time": time.time(), "audio_hashes": sorted(set(keys))}
        (self.root / self.extractor).mkdir(parents=True, exist_ok=True)
        _write_atomic(str(self.root / self.extractor / "last-run.json"), json.dumps(record).encode())


SEGMENTS = "segments"
INDEX = "index"


def _unread() -> dict[str, Any]:
    """A cache's state of reading its index: nothing read yet, no segment open."""
    return {
        "_where": {},  # key -> (segment, offset, length)
        "_read_to": 0,  # bytes of the index read so far
        "_loaded": False,
        "_open": None,  # (segment, file) last read from, kept open
    }


def _read_from(path: str, offset: int = 0) -> bytes:
    """The bytes of the file at ``path`` from ``offset`` on; none where it does not exist yet."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""


def _latest(records: Iterable[tuple[str, list[tuple[str, int, int]]]]) -> dict[str, tuple[str, int, int]]:
    """key -> (segment, offset, length) of index records; a key's last line wins."""
    return {key: (segment, offset, length) for segment, entries in records for key, offset, length in entries}


def _record(segment: str, entries: Sequence[Sequence[Any]]) -> bytes:
    # a line of its own even after a torn one: the newline before it ends whatever came first
    return b"\n" + json.dumps({"segment": segment, "entries": list(entries)}, separators=(",", ":")).encode() + b"\n"


def _records(data: bytes) -> Iterable[tuple[str, list[tuple[str, int, int]]]]:
    """``(segment, [(key, offset, length), ...])`` per well-formed index line; torn or garbled lines are skipped."""
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            record = json.loads(line)
            segment = record["segment"]
            if not (isinstance(segment, str) and segment.endswith(".seg") and segment[:-4].isalnum()):
                continue
            entries = [(str(key), int(offset), int(length)) for key, offset, length in record["entries"]]
        except (ValueError, KeyError, TypeError):
            continue
        yield segment, entries


def _append(path: str, line: bytes) -> None:
    """Append ``line`` in one write (O_APPEND: lines of concurrent writers do not interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        if written != len(line):  # a full disk; the newline that starts the next line isolates this one
            raise OSError(f"could not append to {path} (disk full?)")
    finally:
        os.close(fd)


def _write_atomic(path: str, data: bytes) -> None:
    """``data`` written to a temporary file and renamed to ``path``; on any failure the temporary file is gone."""
    tmp = f"{os.path.dirname(path)}{os.sep}.{os.path.basename(path)}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            raise FeatureStoreError(f"could not write the feature cache at '{path}' ({err.strerror or err}): the "
                                    f"disk is full or not writable. Free space there, or set VOCALAB_CACHE to "
                                    f"another disk.") from err
        raise


@dataclass(frozen=True)
class CacheUsage:
    extractor: str
    fingerprint: str
    entries: int
    bytes: int  # segments, index, the pack of the last store, and entries of an earlier layout
    last_run: bool  # the fingerprint of this extractor's last run


def usage(root: Path | None = None) -> list[CacheUsage]:
    """Entries and bytes per extractor fingerprint."""
    root = cache_root() if root is None else Path(root)
    rows = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        last = _last_run(folder.parent)
        cache = FeatureCache(root, folder.parent.name, folder.name)
        rows.append(CacheUsage(folder.parent.name, folder.name, len(cache.keys()), folder_size(folder),
                               last is not None and last.get("fingerprint") == folder.name))
    return rows


def _last_run(extractor_folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((extractor_folder / "last-run.json").read_text())
    except (OSError, ValueError):
        return None


def prune(root: Path | None = None, *, everything: bool = False) -> tuple[int, int]:
    """Delete what the last run of each extractor did not use (or everything); returns (entries, bytes) freed."""
    root = cache_root() if root is None else Path(root)
    freed_entries = freed_bytes = 0
    for extractor_folder in sorted(p for p in root.glob("*") if p.is_dir()):
        last = None if everything else _last_run(extractor_folder)
        for folder in sorted(p for p in extractor_folder.iterdir() if p.is_dir()):
            cache = FeatureCache(root, extractor_folder.name, folder.name)
            before = folder_size(folder)
            if last is not None and folder.name == last.get("fingerprint"):
                freed_entries += _compact(cache, set(last.get("audio_hashes", [])))
                freed_bytes += before - folder_size(folder)
            else:
                freed_entries += len(cache.keys())
                freed_bytes += before
                shutil.rmtree(folder, ignore_errors=True)
        if everything:
            shutil.rmtree(extractor_folder, ignore_errors=True)
    return freed_entries, freed_bytes


def _compact(cache: FeatureCache, keep: set[str]) -> int:
    """Keep the entries of ``keep`` only: segments holding nothing else stay, the rest are rewritten without the
    entries dropped; returns how many entries were dropped (damaged ones included)."""
    records = list(_records(_read_from(cache._index)))
    winner = _latest(records)
    clean, dirty = [], set()
    for segment, entries in records:
        if all(key in keep and winner[key] == (segment, offset, length) for key, offset, length in entries):
            clean.append((segment, entries))
        else:
            dirty.add(segment)
    clean = [(segment, entries) for segment, entries in clean if segment not in dirty]
    kept = {key for _, entries in clean for key, _, _ in entries}
    lines = [_record(segment, entries) for segment, entries in clean]
    moved_keys, moved = [], []
    for key, (segment, _, _) in winner.items():
        if segment in dirty and key in keep and key not in kept:
            entry = cache.get(key)
            if entry is not None:
                moved_keys.append(key)
                moved.append(entry)
    cache.close()
    index_tmp = f"{cache._index}.{os.getpid()}.new"
    for begin in range(0, len(moved), 64):
        batch = FeatureCache(cache.root, cache.extractor, cache.fingerprint)
        batch._index = index_tmp  # the rewritten entries' lines go to the new index
        batch.put_many(moved_keys[begin:begin + 64], moved[begin:begin + 64])
    with open(index_tmp, "ab") as handle:
        handle.write(b"".join(lines))
    os.replace(index_tmp, cache._index)
    named = {segment for segment, _ in _records(_read_from(cache._index))}  # the kept segments and the new ones
    for path in (cache.folder / SEGMENTS).glob("*"):
        if path.name not in named:  # dropped segments, and temporary files a killed run left
            path.unlink(missing_ok=True)
    for legacy in cache.folder.glob("??"):  # one file per entry, as an earlier layout kept them
        if legacy.is_dir():
            shutil.rmtree(legacy, ignore_errors=True)
    for tmp in cache.folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    return len(winner) - len(kept) - len(moved)
