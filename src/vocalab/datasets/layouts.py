"""Corpus layouts: find a corpus's audio files and parse their names into candidates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from vocalab.datasets import crema_d, csv_table, emodb, folders, mesd, ravdess, savee, tess
from vocalab.datasets.base import Candidate
from vocalab.datasets.config import CorpusConfig, DataConfig
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
                       replace(c, reason=f"label '{c.label}' is mapped to null in data.label_map (left out)"))
        elif c.label in common:
            out.append(c)
        else:
            raise ParamsError(
                f"label '{c.label}' of corpus '{dataset}' is not covered by data.label_map (keys "
                f"{sorted(label_map)}, common labels {sorted(common)}). Map it, e.g. '{c.label}: {c.label}', "
                f"or map it to null to leave it out."
            )
    return out


def scan_corpora(config: DataConfig, raw: Path) -> list[tuple[str, list[Candidate]]]:
    """Per corpus: its name and its candidates, with ``data.target`` and ``data.label_map`` applied."""
    scanned = []
    for corpus in config.corpora():
        candidates = scan_corpus(raw / config.raw_folder(corpus), layout=corpus.corpus_layout,
                                 dataset=corpus.dataset, config=corpus, target=config.target)
        scanned.append((corpus.dataset, apply_label_map(candidates, config.label_map, dataset=corpus.dataset)))
    return scanned
