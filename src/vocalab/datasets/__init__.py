"""Corpus layouts and the ``data`` params section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from vocalab.datasets import crema_d, emodb, folders, mesd, ravdess, savee, tess
from vocalab.datasets.base import Candidate
from vocalab.datasets.folders import FoldersConfig
from vocalab.errors import ParamsError
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
}


@dataclass(frozen=True)
class SyntheticConfig:
    """``data.synthetic``: the espeak-ng emotional speech corpus."""

    speakers: int = bounded(12, ge=2, le=24)
    repetitions: int = bounded(2, ge=1, le=2)
    snr_db: float | None = bounded(25.0, ge=-10.0, le=100.0)
    seed: int = bounded(0, ge=0)


@dataclass(frozen=True)
class DataConfig:
    """``data``: which corpus to use and how it is laid out."""

    source: Literal["synthetic", "local"] = "synthetic"
    path: str | None = None
    layout: Literal["ravdess", "crema_d", "tess", "emodb", "savee", "mesd", "folders"] = "ravdess"
    synthetic: SyntheticConfig = nested(SyntheticConfig)
    folders: FoldersConfig = nested(FoldersConfig)

    def check(self, section: str) -> None:
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
    def dataset(self) -> str:
        """The dataset name written in the manifest and used to namespace speakers."""
        return "synthetic" if self.source == "synthetic" else self.layout


def scan_corpus(root: Path, *, layout: str, dataset: str,
                folders_config: FoldersConfig | None = None) -> list[Candidate]:
    """Find every audio file of a corpus laid out as ``layout`` under ``root``."""
    if layout == "folders":
        return folders.scan(root, dataset=dataset, config=folders_config)
    return LAYOUTS[layout](root, dataset=dataset)
