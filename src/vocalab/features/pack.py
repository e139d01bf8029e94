"""The last store a cache fingerprint assembled, kept whole so the next run copies rows instead of opening entries.

A corpus of 20,000 clips that grows by 200 still needs 20,000 rows in its new store.
Reading them from 20,000 entry files costs more than extracting the 200 new ones; a
pack holds the same rows as three arrays (the store's own files), so unchanged
utterances are copied in a few large slices.

Layout, in the fingerprint's cache folder (:mod:`.cache`)::

    pack/index.json            per output: the audio hash of each row, the hashes it has no
                               frames for, and each file's size and CRC-32
    pack/<output>/frames.npy   the store's files, hard-linked where the file system allows,
    pack/<output>/offsets.npy  else copied
    pack/<output>/pooled.npy

Every file is checked against its size and CRC-32 before a row is taken from it (the
check of zip and gzip: it catches truncation, torn writes and flipped bits at a fraction of a
cryptographic hash's cost; a pack is not a defence against tampering). A pack that
is truncated, changed or incomplete is deleted and the run falls back to the entries,
which stay the reference (:func:`vocalab.features.cache.prune` keeps those of the last
run). A pack only ever holds rows written from checked entries or from a checked pack.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

VERSION = 1
FILES = ("frames.npy", "offsets.npy", "pooled.npy")


class FrameFile:
    """The frames of a pack, a 2-D ``.npy`` file read by runs of rows.

    Read with ``pread``, not memory-mapped: the process holds the rows it copies, and
    its resident memory does not grow with the store (a mapping's pages count as the
    process's own).
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115  (closed with the pack)
        version = np.lib.format.read_magic(self._file)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, self.dtype = read_header(self._file)
        if len(shape) != 2 or fortran_order:
            raise ValueError(f"{path} does not hold rows of frames")
        self.shape = shape
        self._start = self._file.tell()
        self._row_bytes = self.dtype.itemsize * shape[1]
        if os.fstat(self._file.fileno()).st_size != self._start + self._row_bytes * shape[0]:
            raise ValueError(f"{path} is not as long as its header says")

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, begin: int, end: int) -> np.ndarray:
        size = (end - begin) * self._row_bytes
        data = os.pread(self._file.fileno(), size, self._start + begin * self._row_bytes)
        if len(data) != size:
            raise ValueError("frames cut short while read")
        return np.frombuffer(data, self.dtype).reshape(end - begin, self.shape[1])

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class PackedOutput:
    """One output's rows in a pack: ``frames[offsets[r]:offsets[r + 1]]`` and ``pooled[r]`` are row ``r``."""

    keys: list[str]  # row -> audio hash (a file listed twice has two rows)
    rows: dict[str, int]  # audio hash -> its first row
    absent: frozenset[str]  # audio hashes this output has no frames for
    frames: FrameFile
    offsets: np.ndarray
    pooled: np.ndarray


@dataclass(frozen=True)
class Pack:
    outputs: dict[str, PackedOutput]
    covered: frozenset[str]  # audio hashes every output has a row for, or knows to be absent

    def covers(self, key: str) -> bool:
        return key in self.covered

    def close(self) -> None:
        for output in self.outputs.values():
            output.frames.close()

    def lengths(self, keys: Iterable[str]) -> dict[str, dict[str, int]]:
        """Frame counts per output of each key it covers (0: absent)."""
        counts = {}
        for name, output in self.outputs.items():
            per_key = dict.fromkeys(output.absent, 0)
            per_key.update(zip(output.keys, np.diff(output.offsets).tolist()))
            counts[name] = per_key
        return {key: {name: counts[name][key] for name in counts} for key in keys if key in self.covered}


def _digest(path: Path) -> str:
    crc, buffer = 0, bytearray(1 << 22)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            crc = zlib.crc32(view[:n], crc)
    return f"{crc:08x}"


def _files_hold(folder: Path, files: Mapping[str, Sequence]) -> bool:
    """Every file has its recorded size (cheap, first) and then its recorded CRC-32."""
    try:
        if any((folder / name).stat().st_size != size for name, (size, _) in files.items()):
            return False
        return all(_digest(folder / name) == digest for name, (_, digest) in files.items())
    except (OSError, TypeError, ValueError):
        return False


def load(folder: Path, outputs: Mapping[str, tuple[int, str]]) -> tuple[Pack | None, bool]:
    """The pack in ``folder`` for ``outputs`` (name -> (dim, frames dtype)); and whether a damaged one was dropped.

    A pack that does not hold exactly these outputs, whole and unchanged, is deleted.
    """
    try:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        if folder.exists():  # files without an index: a pack that was never finished
            shutil.rmtree(folder, ignore_errors=True)
            return None, True
        return None, False
    except (OSError, ValueError):
        index = None
    try:
        pack = _open(folder, index, outputs)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pack = None
    if pack is None:
        shutil.rmtree(folder, ignore_errors=True)
        return None, True
    return pack, False


def _open(folder: Path, index: dict, outputs: Mapping[str, tuple[int, str]]) -> Pack | None:
    if index.get("version") != VERSION or set(index["outputs"]) != set(outputs):
        return None
    packed = {}
    for name, (dim, dtype) in outputs.items():
        described = index["outputs"][name]
        keys, files = described["keys"], described["files"]
        if set(files) != set(FILES) or not _files_hold(folder / name, files):
            return None
        offsets = np.load(folder / name / "offsets.npy")
        pooled = np.load(folder / name / "pooled.npy")
        frames = FrameFile(folder / name / "frames.npy")
        if (offsets.shape != (len(keys) + 1,) or len(pooled) != len(keys) or frames.shape[1] != dim
                or frames.dtype != np.dtype(dtype) or offsets[-1] != len(frames)):
            frames.close()
            return None
        rows: dict[str, int] = {}
        for row, key in enumerate(keys):
            rows.setdefault(key, row)
        packed[name] = PackedOutput(list(keys), rows, frozenset(described["absent"]), frames, offsets, pooled)
    covered = frozenset.intersection(*(frozenset(o.rows) | o.absent for o in packed.values()))
    return Pack(packed, covered)


def save(folder: Path, stores: Mapping[str, Path], keys: Mapping[str, list[str]],
         absent: Mapping[str, list[str]]) -> None:
    """Keep the stores just written (output name -> store folder) as the pack in ``folder``.

    Built beside it and renamed into place: a run killed half-way leaves the old
    pack, or none, never a mixed one.
    """
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    index = {"version": VERSION, "outputs": {}}
    for name, store in stores.items():
        (tmp / name).mkdir(parents=True)
        for file in FILES:
            _link_or_copy(Path(store) / file, tmp / name / file)
        index["outputs"][name] = {
            "keys": list(keys[name]), "absent": sorted(set(absent[name])),
            "files": {file: [(tmp / name / file).stat().st_size, _digest(tmp / name / file)] for file in FILES}}
    (tmp / "index.json").write_text(json.dumps(index), encoding="utf-8")
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old.tmp")  # ".tmp": prune clears it if a run dies here
    with contextlib.suppress(FileNotFoundError):
        os.replace(folder, old)
    try:
        os.replace(tmp, folder)
    except OSError:  # another run of this fingerprint put its pack there first: as good as this one
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def same_rows(pack: Pack | None, keys: Mapping[str, list[str]], absent: Mapping[str, list[str]]) -> bool:
    """Whether ``pack`` already holds exactly these rows (then the new store is its bytes, and it is kept)."""
    if pack is None or set(pack.outputs) != set(keys):
        return False
    return all(output.keys == list(keys[name]) and output.absent == frozenset(absent[name])
               for name, output in pack.outputs.items())


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (the store's files are replaced by later runs, never written in place), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
