"""Bring a corpus that is already on disk into the project (``data.source: local``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from vocalab.datasets.base import SKIPPED_FILE
from vocalab.errors import ManifestError


def copy_corpus(source: Path, target: Path, *, progress: bool = True) -> int:
    """Make ``target`` a copy of every non-hidden file under ``source``; returns the number of files.

    A copy, not a link: DVC then versions exactly what was used, and the user's
    original files are never touched by the cache. The copy is a sync: a file whose
    size and modification time match its copy is not copied again, and a file no
    longer in ``source`` is removed, so a corpus that grew by 1 % costs 1 % to bring in.
    """
    source = Path(source).expanduser().resolve()
    resolved_target = Path(target).resolve()
    if resolved_target == source or source in resolved_target.parents or resolved_target in source.parents:
        raise ManifestError(
            f"data.path '{source}' overlaps the pipeline's corpus folder '{target}', which 'download' "
            f"empties first. Keep your corpus outside it (e.g. /data/corpora/ravdess)."
        )
    files, skipped = [], []
    for path in sorted(source.rglob("*")):
        reason = _skip_reason(path, source)
        if reason is not None:
            skipped.append((path.relative_to(source).as_posix(), *reason))
        elif path.is_file():
            files.append(path)
    if not files:
        raise ManifestError(f"data.path '{source}' holds no files. Point it at the corpus root.")
    wanted = {path.relative_to(source) for path in files}
    if target.is_dir():
        for old in sorted(target.rglob("*"), reverse=True):  # files before their folders
            rel = old.relative_to(target)
            if old.is_symlink() or (old.is_file() and rel not in wanted):
                old.unlink()
            elif old.is_dir() and not any(old.iterdir()):
                old.rmdir()
    elif target.exists():
        target.unlink()
    for path in tqdm(files, desc="copy corpus", unit="file", disable=not progress):
        destination = target / path.relative_to(source)
        if _same_file(path, destination):
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    write_skipped(target, skipped)
    return len(files)


def _same_file(source: Path, copy: Path) -> bool:
    """Whether ``copy`` is an earlier copy of ``source`` (same size and modification time; copy2 keeps it)."""
    try:
        a, b = source.stat(), copy.stat()
    except FileNotFoundError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _skip_reason(path: Path, source: Path) -> tuple[str, str] | None:
    """Why an entry under the corpus root is not copied (None: it is, or it is a plain folder)."""
    if any(part.startswith(".") for part in path.relative_to(source).parts):
        return ("hidden", "hidden files and folders are not part of a corpus") if not path.is_dir() else None
    if path.is_symlink() and not path.exists():
        return "broken_link", f"a link to '{os.readlink(path)}', which does not exist"
    if path.is_symlink() and path.is_dir():
        return "linked_folder", "links to folders are not followed: copy or move that folder under data.path"
    if path.exists() and not path.is_file() and not path.is_dir():
        return "not_a_file", "neither a file nor a folder (a pipe, socket or device)"
    return None


def write_skipped(target: Path, skipped: list[tuple[str, str, str]]) -> None:
    """Record what was found under the corpus root but not copied, for the manifest's counts."""
    if skipped:
        table = pd.DataFrame(skipped, columns=["path", "reason", "detail"])
        target.mkdir(parents=True, exist_ok=True)
        table.to_csv(target / SKIPPED_FILE, index=False)
