"""Bring a corpus that is already on disk into the project (``data.source: local``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tqdm import tqdm

from vocalab.errors import ManifestError


def copy_corpus(source: Path, target: Path, *, progress: bool = True) -> int:
    """Replace ``target`` with a copy of every non-hidden file under ``source``.

    A copy, not a link: DVC then versions exactly what was used, and the user's
    original files are never touched by the cache. Returns the number of files.
    """
    source = Path(source).expanduser().resolve()
    resolved_target = Path(target).resolve()
    if resolved_target == source or source in resolved_target.parents or resolved_target in source.parents:
        raise ManifestError(
            f"data.path '{source}' overlaps the pipeline's corpus folder '{target}', which 'download' "
            f"empties first. Keep your corpus outside it (e.g. ~/corpora/ravdess)."
        )
    files = [
        p for p in sorted(source.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts)
    ]
    if not files:
        raise ManifestError(f"data.path '{source}' holds no files. Point it at the corpus root.")
    if target.exists():
        shutil.rmtree(target)
    for path in tqdm(files, desc="copy corpus", unit="file", disable=not progress):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
    return len(files)
