"""What every corpus layout hands to the manifest builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

#: Extensions read as audio; anything else under a corpus root is counted as "other".
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3"})


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


def iter_audio_files(root: Path) -> Iterator[Path]:
    """Audio files under ``root``, recursively, in a stable (sorted) order."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
            yield path


def count_other_files(root: Path) -> int:
    """Files under ``root`` that are not audio (READMEs, metadata), ignoring hidden ones."""
    return sum(
        1
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix.lower() not in AUDIO_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
