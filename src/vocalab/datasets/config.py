"""The ``data`` params section: which corpus (or corpora), how its files are named, what to predict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vocalab.datasets.csv_table import CsvConfig
from vocalab.datasets.folders import FoldersConfig
from vocalab.errors import ParamsError
from vocalab.fetch import is_hex_digest
from vocalab.params import bounded, nested


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
