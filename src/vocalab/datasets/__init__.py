"""Corpus layouts and the ``data`` params section."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

from vocalab.datasets import crema_d, csv_table, emodb, folders, mesd, ravdess, savee, tess
from vocalab.datasets.base import Candidate
from vocalab.datasets.csv_table import CsvConfig
from vocalab.datasets.folders import FoldersConfig
from vocalab.errors import ParamsError
from vocalab.fetch import is_hex_digest
from vocalab.params import bounded, nested

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


@dataclass(frozen=True)
class SyntheticConfig:
    """``data.synthetic``: the espeak-ng emotional speech corpus."""

    speakers: int = bounded(12, ge=2, le=24)
    repetitions: int = bounded(2, ge=1, le=2)
    snr_db: float | None = bounded(25.0, ge=-10.0, le=100.0)
    seed: int = bounded(0, ge=0)


#: corpora that ``download`` can fetch (``data.source: <name>``); their layout has the same name
DOWNLOADABLE = ("ravdess", "crema_d", "emodb", "tess")


@dataclass(frozen=True)
class CorpusConfig:
    """One corpus: where it comes from and how its files are named.

    ``data`` itself is one (the usual case); ``data.sources`` lists several.
    """

    source: Literal["synthetic", "local", "ravdess", "crema_d", "emodb", "tess"] = "synthetic"
    path: str | None = None
    url: str | None = None
    sha256: str | None = None
    layout: Literal["ravdess", "crema_d", "tess", "emodb", "savee", "mesd", "folders", "csv"] = "ravdess"
    name: str | None = None  # namespace of its speakers and utt_ids; default: the layout (or "synthetic")
    folders: FoldersConfig = nested(FoldersConfig)
    csv: CsvConfig = nested(CsvConfig)

    def check(self, section: str) -> None:
        if self.sha256 is not None and not is_hex_digest(self.sha256):
            raise ParamsError(f"params key '{section}.sha256' = {self.sha256!r} is not a SHA-256 (64 hex digits).")
        if self.source in DOWNLOADABLE:
            from vocalab.datasets.download import KNOWN_ARCHIVES

            if self.url is None and self.source not in KNOWN_ARCHIVES:
                raise ParamsError(
                    f"params key '{section}.source' = {self.source!r}: this corpus has no single archive with a "
                    f"published checksum built in. Set '{section}.url' to an archive (zip or tar) of it and "
                    f"'{section}.sha256' to that file's SHA-256, or use {section}.source: local with "
                    f"{section}.layout: {self.source}."
                )
            if self.url is not None and self.sha256 is None:
                raise ParamsError(f"params key '{section}.url' is set without '{section}.sha256': give the "
                                  f"archive's SHA-256 so a corrupt or wrong download is caught.")
        if self.source == "local":
            if self.path is None:
                raise ParamsError(
                    f"params key '{section}.path' is required when {section}.source is 'local': "
                    f"set it to the folder holding your corpus (e.g. a RAVDESS 'Actor_01..24' tree)."
                )
            if not Path(self.path).expanduser().is_dir():
                raise ParamsError(
                    f"params key '{section}.path' = {self.path!r} is not a folder. "
                    f"Point it at the corpus root on disk."
                )

    @property
    def corpus_layout(self) -> str:
        """How the files in data/raw are named: a downloaded corpus's own layout, else ``layout``."""
        return self.source if self.source in DOWNLOADABLE else self.layout

    @property
    def dataset(self) -> str:
        """The dataset name written in the manifest and used to namespace speakers."""
        if self.name is not None:
            return self.name
        return "synthetic" if self.source == "synthetic" else self.corpus_layout

    def archive(self):
        """The archive to download: ``url``/``sha256`` when given, else the built-in one."""
        from vocalab.datasets.download import KNOWN_ARCHIVES, Archive

        if self.url is not None:
            return Archive(self.url, f"sha256:{self.sha256.lower()}")
        return KNOWN_ARCHIVES[self.source]


@dataclass(frozen=True)
class DataConfig(CorpusConfig):
    """``data``: the corpus (or ``sources``, several merged), what to predict, the label map."""

    target: str | None = None
    label_map: dict[str, str | None] = field(default_factory=dict)
    sources: tuple[CorpusConfig, ...] = ()
    synthetic: SyntheticConfig = nested(SyntheticConfig)

    def check(self, section: str) -> None:
        if not self.sources:
            super().check(section)
            return
        if (self.source, self.path, self.url) != ("synthetic", None, None):
            raise ParamsError(f"params key '{section}.sources' lists the corpora, so leave '{section}.source', "
                              f"'.path' and '.url' unset: configure each corpus in its entry of the list.")
        names = [c.dataset for c in self.sources]
        if len(set(names)) != len(names):
            raise ParamsError(f"params key '{section}.sources' names corpora {names}; give each a different "
                              f"'name' so their speakers cannot collide.")

    def corpora(self) -> list[CorpusConfig]:
        """Each corpus with its folder under data/raw ('' for a single corpus)."""
        return list(self.sources) if self.sources else [self]

    def raw_folder(self, corpus: CorpusConfig) -> str:
        return corpus.dataset if self.sources else ""


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
