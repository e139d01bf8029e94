"""A corpus that is already on disk (``data.source: local``): indexed where it lies, never copied.

``download`` writes an index of the corpus into its folder of data/raw: every file
under the corpus root, relative to it, with its size, modification time and content
hash (the manifest's ``audio_hash``). The index is what the manifest stage depends on,
so DVC looks at the corpus's files once (as ``download``'s dependency ``data.path``),
not three times, and the corpus is not duplicated in data/raw and DVC's cache. A file
whose size and modification time match the previous index keeps its hash, so a corpus
that grew by 1 % is hashed by 1 %.

The manifest stage reads the files where they are, after checking that the corpus
still matches its index (:func:`check_index`): a file changed since ``download`` ran is
an error asking for ``dvc repro``, never a manifest of files DVC did not see.
"""

from __future__ import annotations

import json
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from vocalab.audio import audio_hash
from vocalab.datasets.base import SKIPPED_FILE
from vocalab.errors import ManifestError

#: the index of a local corpus, in its folder of data/raw
INDEX_FILE = "corpus-index.json"
_VERSION = 1


@dataclass(frozen=True)
class CorpusIndex:
    """The files of a local corpus: POSIX path relative to ``root`` -> ``(bytes, mtime_ns, audio_hash)``."""

    root: Path
    files: dict[str, tuple[int, int, str]]

    def hashes(self) -> dict[str, str]:
        """Absolute path (as the manifest builder sees it) -> audio_hash."""
        return {os.path.join(self.root, rel): entry[2] for rel, entry in self.files.items()}

    def to_json(self) -> str:
        files = [[rel, *entry] for rel, entry in sorted(self.files.items())]
        return json.dumps({"version": _VERSION, "root": self.root.as_posix(), "columns":
                           ["path", "bytes", "mtime_ns", "audio_hash"], "files": files}, indent=0) + "\n"


def index_corpus(source: Path, target: Path, *, progress: bool = True) -> tuple[int, int]:
    """Write ``target/INDEX_FILE`` for the corpus at ``source``; returns (files indexed, files hashed).

    ``target`` keeps only the index and the list of what was skipped (a copy of the
    corpus left there by an earlier version is removed).
    """
    source = Path(source).expanduser().resolve()
    resolved_target = Path(target).resolve()
    if resolved_target == source or source in resolved_target.parents or resolved_target in source.parents:
        raise ManifestError(
            f"data.path '{source}' overlaps the pipeline's corpus folder '{target}', where 'download' "
            f"writes the corpus's index. Keep your corpus outside it (e.g. /data/corpora/ravdess)."
        )
    stats, skipped = _scan(source)
    if not stats:
        raise ManifestError(f"data.path '{source}' holds no files. Point it at the corpus root.")
    previous = _read(target / INDEX_FILE)
    known = previous.files if previous is not None and previous.root == source else {}
    files, to_hash = {}, []
    for rel, (size, mtime_ns) in stats.items():
        old = known.get(rel)
        if old is not None and old[:2] == (size, mtime_ns):
            files[rel] = old
        else:
            to_hash.append(rel)
    for rel in tqdm(to_hash, desc="hash corpus", unit="file", disable=not progress):
        files[rel] = (*stats[rel], audio_hash(source / rel))
    _clear(target)
    tmp = target / f".{INDEX_FILE}.tmp"
    tmp.write_text(CorpusIndex(source, files).to_json(), encoding="utf-8")
    os.replace(tmp, target / INDEX_FILE)
    write_skipped(target, skipped)
    return len(files), len(to_hash)


def read_index(folder: Path, root: Path) -> CorpusIndex:
    """The index ``download`` wrote in ``folder`` for the corpus at ``root`` (data.path, or a source's path)."""
    index = _read(Path(folder) / INDEX_FILE)
    root = Path(root).expanduser().resolve()
    if index is None:
        raise ManifestError(f"'{Path(folder) / INDEX_FILE}' is missing or unreadable: 'download' writes it for a "
                            f"local corpus. Run 'dvc repro' (or 'dvc repro download').")
    if index.root != root:
        raise ManifestError(f"'{Path(folder) / INDEX_FILE}' indexes '{index.root}', not data.path '{root}'. "
                            f"Run 'dvc repro' so 'download' indexes the corpus again.")
    return index


def check_index(index: CorpusIndex) -> None:
    """Stop when the corpus no longer matches its index: a file added, removed or changed since ``download``."""
    stats, _ = _scan(index.root)
    now = set(stats)
    before = set(index.files)
    changed = sorted(rel for rel in now & before if stats[rel] != index.files[rel][:2])
    for kind, paths in (("added", sorted(now - before)), ("removed", sorted(before - now)), ("changed", changed)):
        if paths:
            raise ManifestError(
                f"{len(paths)} file(s) of the corpus at '{index.root}' were {kind} after 'download' indexed it "
                f"(e.g. '{paths[0]}'). Run 'dvc repro' again: 'download' indexes the corpus, then the "
                f"manifest reads it.")


def _scan(source: Path) -> tuple[dict[str, tuple[int, int]], list[tuple[str, str, str]]]:
    """Every file of the corpus (relative POSIX path -> (bytes, mtime_ns)), and what is skipped, with why.

    One ``scandir`` per folder and one ``stat`` per file: 20,000 files take a fraction of a second.
    """
    stats: dict[str, tuple[int, int]] = {}
    skipped: list[tuple[str, str, str]] = []

    def walk(folder: str, prefix: str, hidden: bool) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel, entry_hidden = prefix + entry.name, hidden or entry.name.startswith(".")
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, rel + "/", entry_hidden)
                elif entry_hidden:
                    skipped.append((rel, "hidden", "hidden files and folders are not part of a corpus"))
                else:
                    try:
                        info = os.stat(entry.path)  # through a link, to what it points at
                    except FileNotFoundError:
                        skipped.append((rel, "broken_link", f"a link to '{os.readlink(entry.path)}', which does "
                                                            f"not exist"))
                        continue
                    except OSError as err:  # ELOOP: a link that leads back to itself, through any number of links
                        if err.errno != errno.ELOOP:
                            raise
                        skipped.append((rel, "link_loop", f"a link to '{os.readlink(entry.path)}' that leads back "
                                                          f"to itself"))
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        skipped.append((rel, "linked_folder", "links to folders are not followed: copy or move "
                                                              "that folder under data.path"))
                    elif not stat.S_ISREG(info.st_mode):
                        skipped.append((rel, "not_a_file", "neither a file nor a folder (a pipe, socket or "
                                                           "device)"))
                    else:
                        stats[rel] = (info.st_size, info.st_mtime_ns)

    if Path(source).is_dir():
        walk(str(source), "", False)
    return stats, sorted(skipped)


def _read(path: Path) -> CorpusIndex | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _VERSION:
            return None
        files = {str(rel): (int(size), int(mtime), str(digest)) for rel, size, mtime, digest in data["files"]}
        return CorpusIndex(Path(data["root"]), files)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _clear(target: Path) -> None:
    """Empty ``target`` but for the index (a copy of the corpus from an earlier version goes)."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    target.mkdir(parents=True, exist_ok=True)
    for old in sorted(target.rglob("*"), reverse=True):  # files before their folders
        if old.name == INDEX_FILE and old.parent == target:
            continue
        if old.is_symlink() or not old.is_dir():
            old.unlink()
        elif not any(old.iterdir()):
            old.rmdir()


def write_skipped(target: Path, skipped: list[tuple[str, str, str]]) -> None:
    """Record what was found under the corpus root but left out, for the manifest's counts."""
    if skipped:
        table = pd.DataFrame(skipped, columns=["path", "reason", "detail"])
        target.mkdir(parents=True, exist_ok=True)
        table.to_csv(target / SKIPPED_FILE, index=False)
