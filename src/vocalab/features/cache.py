"""The per-utterance feature cache: what an extractor made of one audio file, kept between runs.

An entry is keyed by the audio file's content (:func:`vocalab.audio.audio_hash`, the
manifest's ``audio_hash``) under a folder named by the extractor's fingerprint (its outputs'
parameters and metadata, the code that computes them, and the versions of the
numeric libraries it uses). So a corpus that grows is extracted only where it grew, a
changed parameter misses the cache, and a file renamed or moved is still a hit.

Layout, under ``$VOCALAB_CACHE/features`` (default ``~/.cache/vocalab/features``)::

    <extractor>/<fingerprint>/info.json          what the fingerprint stands for
    <extractor>/<fingerprint>/<ab>/<hash>.entry  one utterance: every output's frames and pooled row
    <extractor>/<fingerprint>/pack/              the last store it assembled, whole (:mod:`.pack`)
    <extractor>/last-run.json                    the fingerprint and audio hashes its last run used

An entry is written to a temporary file and renamed into place, and carries a
checksum of its bytes: a truncated or corrupt entry is detected when read, deleted
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

from vocalab.features.pack import size as pack_size
from vocalab.fetch import cache_dir

MAGIC = b"VLFC1\n"
_DIGEST = 16
# the libraries whose arithmetic reaches the numbers an extractor writes
_LIBRARIES = ("numpy", "scipy", "soundfile", "soxr", "torch", "transformers", "opensmile", "librosa")


def cache_root() -> Path:
    """Where feature caches live: ``$VOCALAB_CACHE/features`` (default ``~/.cache/vocalab/features``)."""
    return cache_dir() / "features"


def code_version(module: str) -> dict[str, str]:
    """Hashes of the code that computes an extractor's numbers, and the versions of the libraries it uses.

    The code is the extractor's module, audio decoding, pooling, and the vocalab modules
    they import (transitively), plus the extraction module itself (it casts and checks
    the frames); not the machinery around them (backends, this cache). An edit to any of
    them misses the cache, which costs a recomputation, never a stale feature.
    """
    from vocalab.imports import code_hashes, library_versions

    package = __name__.rsplit(".", 1)[0]
    # installed versions, imported or not: the same fingerprint in every process
    return {**code_hashes([module, "vocalab.audio", f"{package}.store"], also=(f"{package}.extraction",)),
            **library_versions(_LIBRARIES)}


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
    """The entries of one extractor fingerprint. Picklable: worker processes write entries themselves."""

    def __init__(self, root: Path, extractor: str, fingerprint: str, *, info: Mapping[str, Any] | None = None):
        self.root = Path(root)
        self.extractor = extractor
        self.fingerprint = fingerprint
        self.folder = self.root / extractor / fingerprint
        self._prefix = str(self.folder) + os.sep  # string paths: pathlib costs more than the I/O here
        self.corrupt = 0  # entries found damaged (deleted, to be recomputed)
        if info is not None and not (self.folder / "info.json").is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(str(self.folder / "info.json"), (json.dumps(info, indent=2, sort_keys=True, default=str)
                                                           + "\n").encode())

    @property
    def pack_folder(self) -> Path:
        """Where the last store this fingerprint assembled is kept whole (:mod:`vocalab.features.pack`)."""
        return self.folder / "pack"

    def path(self, key: str) -> str:
        return f"{self._prefix}{key[:2]}{os.sep}{key}.entry"

    def has(self, key: str) -> bool:
        return os.path.isfile(self.path(key))

    def _damaged(self, path: str) -> None:
        self.corrupt += 1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def get(self, key: str) -> Entry | None:
        """The entry, or None when it is missing or damaged (a damaged one is deleted and counted)."""
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        try:
            return Entry.from_bytes(data)
        except _DAMAGED:
            self._damaged(path)
            return None

    def read_lengths(self, key: str) -> dict[str, int] | None:
        """Frame counts per output from an entry's header alone (None: missing, or damaged).

        A truncated entry is caught here by its size; the checksum, which covers the
        whole entry, is checked when the entry is read whole.
        """
        path = self.path(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read(4096)
                if len(data) >= _PREFIX + 4:
                    need = _PREFIX + 4 + struct.unpack_from("<I", data, _PREFIX)[0]
                    if len(data) < need:
                        data += handle.read(need - len(data))
                header, cursor = _header(data)
                size = cursor + sum(np.dtype(dtype).itemsize * math.prod(shape) for _, _, dtype, shape in header)
                if size != os.fstat(handle.fileno()).st_size:
                    raise ValueError("entry length does not match its header")
            return {name: int(shape[0]) for name, kind, _, shape in header if kind == "frames"}
        except FileNotFoundError:
            return None
        except _DAMAGED:
            self._damaged(path)
            return None

    def put(self, key: str, entry: Entry) -> dict[str, int]:
        """Write an entry atomically; returns its frame counts."""
        path = self.path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_atomic(path, entry.to_bytes())
        return entry.lengths()

    def put_many(self, keys: Sequence[str], entries: Sequence[Entry]) -> list[dict[str, int]]:
        return [self.put(key, entry) for key, entry in zip(keys, entries)]

    def record_run(self, keys: Iterable[str]) -> None:
        """Remember the audio hashes this run used: ``vocalab cache prune`` keeps their entries."""
        record = {"fingerprint": self.fingerprint, "time": time.time(), "audio_hashes": sorted(set(keys))}
        (self.root / self.extractor).mkdir(parents=True, exist_ok=True)
        _write_atomic(str(self.root / self.extractor / "last-run.json"), json.dumps(record).encode())


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{os.path.dirname(path)}{os.sep}.{os.path.basename(path)}.{os.getpid()}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class CacheUsage:
    extractor: str
    fingerprint: str
    entries: int
    bytes: int  # entries and the pack of the last store
    last_run: bool  # the fingerprint of this extractor's last run


def usage(root: Path | None = None) -> list[CacheUsage]:
    """Entries and bytes per extractor fingerprint."""
    root = cache_root() if root is None else Path(root)
    rows = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        last = _last_run(folder.parent)
        files = [p for p in folder.rglob("*.entry")]
        rows.append(CacheUsage(folder.parent.name, folder.name, len(files),
                               sum(p.stat().st_size for p in files) + pack_size(folder / "pack"),
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
        keep = set(last.get("audio_hashes", [])) if last else set()
        for folder in sorted(p for p in extractor_folder.iterdir() if p.is_dir()):
            current = last is not None and folder.name == last.get("fingerprint")
            for entry in list(folder.rglob("*.entry")):
                if not current or entry.stem not in keep:
                    freed_entries += 1
                    freed_bytes += entry.stat().st_size
                    entry.unlink()
            for tmp in folder.rglob(".*.tmp"):  # left by a killed run
                if tmp.is_dir():
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    tmp.unlink(missing_ok=True)
            if not current:
                shutil.rmtree(folder, ignore_errors=True)
        if everything:
            shutil.rmtree(extractor_folder, ignore_errors=True)
    return freed_entries, freed_bytes
