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

    speakers: int = bounded(10, ge=2, le=24)
    statements: int = bounded(1, ge=1, le=2)
    repetitions: int = bounded(1, ge=1, le=2)
    snr_db: float | None = bounded(25.0, ge=-10.0, le=100.0)
    seed: int = bounded(0, ge=0)


#: ``data.path`` when no local corpus is used: the project's own (empty) corpus folder; DVC needs a folder
#: there because ``download`` depends on the content of ``data.path``
WATCHED_DEFAULT = "corpus"

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

    path: str | None = WATCHED_DEFAULT
    target: str | None = None
    label_map: dict[str, str | None] = field(default_factory=dict)
    sources: tuple[CorpusConfig, ...] = ()
    synthetic: SyntheticConfig = nested(SyntheticConfig)

    def check(self, section: str) -> None:
        self._check_watched(section)
        if not self.sources:
            super().check(section)
            return
        if (self.source, self.url) != ("synthetic", None):
            raise ParamsError(f"params key '{section}.sources' lists the corpora, so leave '{section}.source' "
                              f"and '.url' unset: configure each corpus in its entry of the list.")
        names = [c.dataset for c in self.sources]
        if len(set(names)) != len(names):
            raise ParamsError(f"params key '{section}.sources' names corpora {names}; give each a different "
                              f"'name' so their speakers cannot collide.")
        root = Path(self.path).resolve()
        for i, corpus in enumerate(self.sources):
            if corpus.source == "local" and corpus.path is not None:
                where = self.local_path(corpus).resolve()
                if where != root and root not in where.parents:
                    raise ParamsError(
                        f"params key '{section}.sources[{i}].path' = {corpus.path!r} is outside {section}.path "
                        f"{self.path!r}, the folder whose content 'download' depends on, so DVC would not see "
                        f"its files change. Set {section}.path to a folder holding every local corpus (their "
                        f"common parent) and give each entry's path relative to it.")
                if not where.is_dir():
                    raise ParamsError(f"params key '{section}.sources[{i}].path' = {corpus.path!r} is not a folder "
                                      f"under {section}.path {self.path!r}. Point it at that corpus's root.")

    def _check_watched(self, section: str) -> None:
        """``data.path`` is a DVC dependency of ``download`` (its content), so it must be a folder DVC can find."""
        fix = (f"Set it to your corpus folder as a full path (or a path inside the project); the default, "
               f"'{WATCHED_DEFAULT}', is the project's own empty corpus folder, used when the corpus is "
               f"generated or downloaded.")
        if self.path is None or not str(self.path).strip():
            raise ParamsError(f"params key '{section}.path' is empty: 'download' depends on the content of this "
                              f"folder. {fix}")
        if str(self.path).startswith("~"):
            raise ParamsError(f"params key '{section}.path' = {self.path!r} starts with '~', which DVC does not "
                              f"expand in a dependency. {fix}")
        uses_it = self.source == "local" or any(c.source == "local" for c in self.sources)
        if uses_it and not Path(self.path).is_dir():
            raise ParamsError(f"params key '{section}.path' = {self.path!r} is not a folder. {fix}")

    def local_path(self, corpus: CorpusConfig) -> Path:
        """Where a local corpus is: ``data.path`` itself, or an entry of ``sources`` (relative to ``data.path``)."""
        if corpus is self or not self.sources:
            return Path(self.path)
        return Path(self.path) / corpus.path

    def corpora(self) -> list[CorpusConfig]:
        """Each corpus with its folder under data/raw ('' for a single corpus)."""
        return list(self.sources) if self.sources else [self]

    def raw_folder(self, corpus: CorpusConfig) -> str:
        return corpus.dataset if self.sources else ""
