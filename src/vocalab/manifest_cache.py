"""What the manifest learnt from decoding each usable audio file, kept between runs, keyed by its content.

Decoding every file to prove it usable is most of the manifest stage's time. What it
finds (duration, sampling rate, channels, format, subtype) depends only on the file's
bytes and on the code that reads them, so it is kept per ``audio_hash`` in one file per
fingerprint of that code (the manifest builder and every vocalab module it imports,
plus the versions of the libraries that decode):

    $VOCALAB_CACHE/manifest/<fingerprint>.jsonl     one line per file: {"audio_hash": ..., fields}

A corpus that grew by 1 % is then decoded by 1 %. Rejected files are not kept: their
reason names their path, and they are looked at again on every run. A line that cannot
be read (a run killed while writing) is ignored, and the file it stood for is decoded
again. Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from vocalab.fetch import cache_dir
from vocalab.imports import code_hashes, library_versions

#: what a usable file's row takes from decoding it; the cache keeps exactly these
FIELDS = {"duration_s": float, "sample_rate": int, "channels": int, "format": str, "subtype": str}
_LIBRARIES = ("numpy", "soundfile", "imageio-ffmpeg")


def manifest_fingerprint() -> str:
    code = {**code_hashes(["vocalab.manifest_build"]), **library_versions(_LIBRARIES)}
    return hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()[:24]


class ManifestCache:
    """Fields of usable files by audio_hash; new ones are appended by :meth:`save`."""

    def __init__(self, root: Path | None = None) -> None:
        folder = (cache_dir() if root is None else Path(root)) / "manifest"
        self.path = folder / f"{manifest_fingerprint()}.jsonl"
        self.known: dict[str, dict[str, Any]] = {}
        self._new: dict[str, dict[str, Any]] = {}
        self._ends_cleanly = True
        self.hits = 0  # files found here this run
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return
        self._ends_cleanly = text.endswith("\n") or not text
        for line in text.splitlines():
            entry = _parse(line)
            if entry is not None:
                self.known[entry[0]] = entry[1]

    def get(self, audio_hash: str) -> dict[str, Any] | None:
        found = self.known.get(audio_hash)
        self.hits += found is not None and audio_hash not in self._new
        return found

    def put(self, audio_hash: str, fields: Mapping[str, Any]) -> None:
        if audio_hash not in self.known:
            kept = {key: fields[key] for key in FIELDS}
            self.known[audio_hash] = self._new[audio_hash] = kept

    def save(self) -> int:
        """Append what this run learnt (one write); returns how many files were added."""
        if not self._new:
            return 0
        lines = "".join(json.dumps({"audio_hash": h, **fields}, sort_keys=True) + "\n"
                        for h, fields in self._new.items())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(lines if self._ends_cleanly else "\n" + lines)
        added, self._new, self._ends_cleanly = len(self._new), {}, True
        return added


def _parse(line: str) -> tuple[str, dict[str, Any]] | None:
    """``(audio_hash, fields)`` of a cache line, or None for a line that is damaged or not whole."""
    try:
        entry = json.loads(line)
        digest = entry.pop("audio_hash")
        if not isinstance(digest, str) or set(entry) != set(FIELDS) or not all(
                isinstance(entry[key], kind) and not isinstance(entry[key], bool) for key, kind in FIELDS.items()):
            return None
        return digest, entry
    except (ValueError, KeyError, AttributeError, TypeError):
        return None
