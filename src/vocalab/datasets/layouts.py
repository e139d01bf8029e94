"""Corpus layouts: find a corpus's audio files and parse their names into candidates."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from vocalab.datasets import crema_d, csv_table, emodb, folders, mesd, ravdess, savee, tess
from vocalab.datasets.base import SCANNED_EXTENSIONS, Candidate, count_other_files
from vocalab.manifest import LEFT_OUT
from vocalab.datasets.config import CorpusConfig, DataConfig
from vocalab.datasets.local import CorpusIndex, check_index, read_index
from vocalab.errors import ParamsError

#: layout name -> scanner(root, dataset=...) -> candidates
LAYOUTS: dict[str, Callable[..., list[Candidate]]] = {
    "ravdess": ravdess.scan,
    "crema_d": crema_d.scan,
    "tess": tess.scan,
    "emodb": emodb.scan,
    "savee": savee.scan,
    "mesd": mesd.scan,
    "folders": folders.scan,
    "csv": csv_table.scan,
}



def scan_corpus(root: Path, *, layout: str, dataset: str, config: CorpusConfig | None = None,
                target: str | None = None) -> list[Candidate]:
    """Find every audio file of a corpus laid out as ``layout`` under ``root``.

    ``config`` supplies the options of the ``folders`` and ``csv`` layouts;
    ``target`` is ``data.target`` (see :func:`apply_target`), and a DataConfig given
    as ``config`` brings its own.
    """
    config = config or CorpusConfig()
    if target is None and isinstance(config, DataConfig):
        target = config.target
    if layout == "folders":
        candidates = folders.scan(root, dataset=dataset, config=config.folders)
    elif layout == "csv":
        candidates = csv_table.scan(root, dataset=dataset, config=config.csv)
    else:
        candidates = LAYOUTS[layout](root, dataset=dataset)
    return apply_target(candidates, target, layout=layout)


def apply_target(candidates: list[Candidate], target: str | None, *, layout: str) -> list[Candidate]:
    """Make the field ``target`` (emotion, intensity, gender, a CSV column, …) the label.

    ``None`` keeps the layout's own label. A file without a value for ``target``
    becomes a reject with the reason; a target no file has is an error listing the
    fields there are.
    """
    if target is None:
        return candidates
    parsed = [c for c in candidates if c.reason is None]
    if parsed and not any(target in c.extras for c in parsed):
        fields = sorted({k for c in parsed for k in c.extras} - {"speaker_known", "given_split"})
        raise ParamsError(f"params key 'data.target' = {target!r} is not a field of the {layout} layout; "
                          f"its fields are {fields} (null: the layout's own label).")
    out = []
    for c in candidates:
        if c.reason is not None:
            out.append(c)
            continue
        value = c.extras.get(target)
        if value is None or str(value).strip() == "":
            out.append(replace(c, reason=f"no value for data.target '{target}'"))
        else:
            out.append(replace(c, label=str(value)))
    return out


def apply_label_map(candidates: list[Candidate], label_map: dict[str, str | None], *,
                    dataset: str) -> list[Candidate]:
    """Map every label through ``label_map`` (``data.label_map``) to a common label set.

    A label is covered when it is a key, or already one of the common labels (the
    map's values). A key mapped to null leaves its files out, as rejects with that
    reason. A label the map does not cover is an error naming it and the corpus.
    """
    if not label_map:
        return candidates
    common = {v for v in label_map.values() if v is not None}
    out = []
    for c in candidates:
        if c.reason is not None:
            out.append(c)
        elif c.label in label_map:
            mapped = label_map[c.label]
            out.append(replace(c, label=mapped) if mapped is not None else
                       replace(c, reason=f"label '{c.label}' is mapped to null in data.label_map (left out)",
                               reject_as=LEFT_OUT))
        elif c.label in common:
            out.append(c)
        else:
            raise ParamsError(
                f"label '{c.label}' of corpus '{dataset}' is not covered by data.label_map (keys "
                f"{sorted(label_map)}, common labels {sorted(common)}). Map it, e.g. '{c.label}: {c.label}', "
                f"or map it to null to leave it out."
            )
    return out


@dataclass(frozen=True)
class ScannedCorpus:
    """One corpus as the manifest stage sees it: its candidates, and what else lies under its root."""

    dataset: str
    candidates: list[Candidate]
    n_other_files: int  # files under its root that are not audio (READMEs, metadata), hidden ones aside
    hashes: dict[str, str] | None = None  # a local corpus: audio_hash of each file, from its index


def scan_corpora(config: DataConfig, raw: Path) -> list[ScannedCorpus]:
    """Per corpus, its candidates with ``data.target`` and ``data.label_map`` applied.

    A generated or downloaded corpus is read from its folder of ``raw``; a local one
    where it lies, after checking it still matches the index ``download`` wrote (a
    candidate that is not in the index becomes a reject, and hidden files are left out,
    as ``download`` counted them as skipped).
    """
    scanned = []
    for corpus in config.corpora():
        folder = raw / config.raw_folder(corpus)
        index = None
        if corpus.source == "local":
            index = read_index(folder, config.local_path(corpus))
            check_index(index)
        root = index.root if index is not None else folder
        candidates = scan_corpus(root, layout=corpus.corpus_layout, dataset=corpus.dataset, config=corpus,
                                 target=config.target)
        if index is None:
            n_other = count_other_files(folder)
        else:
            candidates = _in_index(candidates, index)
            n_other = sum(1 for rel in index.files if Path(rel).suffix.lower() not in SCANNED_EXTENSIONS)
        scanned.append(ScannedCorpus(corpus.dataset, apply_label_map(candidates, config.label_map,
                                                                     dataset=corpus.dataset),
                                     n_other, index.hashes() if index is not None else None))
    return scanned


def _in_index(candidates: list[Candidate], index: CorpusIndex) -> list[Candidate]:
    """A local corpus's candidates: hidden files dropped (``download`` skipped them), others not indexed rejected."""
    kept = []
    for c in candidates:
        try:
            rel = Path(os.path.normpath(c.path)).relative_to(index.root).as_posix()
        except ValueError:
            rel = None
        if rel in index.files:
            kept.append(replace(c, path=index.root / rel))
        elif rel is not None and any(part.startswith(".") for part in rel.split("/")):
            continue  # counted as skipped when indexed
        elif c.reason is not None:
            kept.append(c)
        else:
            kept.append(replace(c, reason=f"'{c.path}' is not among the files 'download' indexed under "
                                          f"'{index.root}' (no such file there)"))
    return kept
