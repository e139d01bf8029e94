"""What every corpus layout hands to the manifest builder."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from vocalab.audio import VIDEO_EXTENSIONS
from vocalab.manifest import UNPARSEABLE

#: Extensions soundfile reads as audio
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"})
#: Extensions a corpus scan hands to the manifest: audio, and containers whose audio track ffmpeg decodes
#: (.m4a, .mp4, ...); each becomes a row or a reject with its reason. Anything else is counted as "other".
SCANNED_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Candidate:
    """One audio file found in a corpus, before its header is read.

    A file whose name cannot be parsed has ``reason`` set and ends up in the
    rejects file; it is never dropped silently.
    """

    path: Path
    utt_id: str | None = None
    speaker: str | None = None
    label: str | None = None
    extras: dict[str, object] = field(default_factory=dict)
    reason: str | None = None
    reject_as: str = UNPARSEABLE  # the rejects table's reason for a candidate with ``reason`` set


def iter_audio_files(root: Path) -> Iterator[Path]:
    """Audio files under ``root``, recursively, in a stable (sorted) order.

    The order of ``sorted(root.rglob("*"))``, and like it links to folders are not
    followed, but one ``scandir`` per folder instead of a ``stat`` per path.
    """
    try:
        with os.scandir(root) as found:
            entries = sorted(found, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):  # as rglob: nothing found there
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from iter_audio_files(Path(entry.path))
        elif os.path.splitext(entry.name)[1].lower() in SCANNED_EXTENSIONS and _is_file(entry):
            yield Path(entry.path)


def _is_file(entry: os.DirEntry) -> bool:
    """Whether an entry is a file, through links; a link loop is not (the corpus index counts it as skipped)."""
    try:
        return entry.is_file()
    except OSError:  # ELOOP
        return False


#: written with a local corpus's index in data/raw: what was under the corpus root but left out, and why
SKIPPED_FILE = ".vocalab-skipped.csv"


def read_skipped(root: Path) -> pd.DataFrame:
    """Every ``SKIPPED_FILE`` under ``root`` (one per local corpus), paths relative to ``root``."""
    tables = []
    for path in sorted(Path(root).rglob(SKIPPED_FILE)):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        prefix = path.parent.relative_to(root).as_posix()
        table["path"] = [f"{prefix}/{p}" if prefix != "." else p for p in table["path"]]
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["path", "reason", "detail"])


def count_other_files(root: Path) -> int:
    """Files under ``root`` that are not audio (READMEs, metadata), ignoring hidden ones."""
    return sum(
        1
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() not in SCANNED_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


@dataclass(frozen=True)
class Parsed:
    """What a layout reads from one file's path."""

    speaker: str  # the corpus's own speaker id; namespaced by dataset in the manifest
    label: str
    extras: dict[str, object] = field(default_factory=dict)
    utt: str | None = None  # id within the corpus; default: the file stem


def scan_parsed(root: Path, *, dataset: str, parse: Callable[[Path, Path], Parsed]) -> list[Candidate]:
    """Every audio file under ``root``, parsed by ``parse(path, root)``.

    ``parse`` raises ValueError with the reason for a path it cannot read; that file
    becomes a candidate with ``reason`` set (a reject, never a silent drop).
    Speakers and utt_ids are namespaced by ``dataset`` so corpora never collide.
    """
    candidates = []
    for path in iter_audio_files(root):
        try:
            parsed = parse(path, root)
        except ValueError as err:
            candidates.append(Candidate(path=path, reason=str(err)))
            continue
        candidates.append(Candidate(
            path=path, utt_id=f"{dataset}_{parsed.utt or path.stem}", speaker=f"{dataset}_{parsed.speaker}",
            label=parsed.label, extras=parsed.extras,
        ))
    return candidates
