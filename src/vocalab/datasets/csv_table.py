"""``csv`` layout: a table you already have names the files and their labels.

Columns are configurable (``data.csv.*``). The table of the stress study
(``audio_path, target_stress, split, dataset_origin``, MELD + IEMOCAP) reads as::

    data: {layout: csv, csv: {file: stress.csv, path_column: audio_path, label_column: target_stress,
                              speaker_column: null, split_column: split}}

Paths are relative to the corpus root and may point at video containers (mp4, …),
whose audio track is decoded with ffmpeg. Every other column is kept in the
manifest (a column named like a manifest column gets a ``csv_`` prefix). Without a
speaker column the speakers are unknown: a speaker-independent split is then
impossible, and the metrics say ``speaker_overlap: true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from vocalab.datasets.base import Candidate, iter_audio_files
from vocalab.errors import ManifestError
from vocalab.manifest import DUPLICATE_ROW, MISSING_FILE, NOT_IN_TABLE, TABLE_ROW

#: manifest columns a CSV column may not overwrite
_RESERVED = {"utt_id", "path", "dataset", "speaker", "label", "duration_s", "sample_rate", "channels", "format",
             "subtype", "audio_hash", "given_split", "speaker_known"}


@dataclass(frozen=True)
class CsvConfig:
    """``data.csv``: where the table is and which columns mean what.

    file : str                  the table, relative to the corpus root
    path_column : str           audio (or video) file, relative to the corpus root
    label_column : str          the class to predict
    speaker_column : str|null   speaker id; null when the table has none
    split_column : str|null     the table's own train/validation(dev)/test, for split.strategy: given
    """

    file: str = "metadata.csv"
    path_column: str = "path"
    label_column: str = "label"
    speaker_column: str | None = "speaker"
    split_column: str | None = None


def _value(row: pd.Series, column: str) -> str | None:
    value = row[column]
    if pd.isna(value) or str(value).strip() == "":
        return None
    return str(value).strip()


def scan(root: Path, *, dataset: str, config: CsvConfig | None = None) -> list[Candidate]:
    config = config or CsvConfig()
    table_path = root / config.file
    if not table_path.is_file():
        raise ManifestError(f"data.csv.file = '{config.file}': no such table under the corpus root '{root}'. "
                            f"Put the CSV inside data.path and name it relative to it.")
    table = pd.read_csv(table_path, dtype=str, keep_default_na=True)
    needed = {"data.csv.path_column": config.path_column, "data.csv.label_column": config.label_column}
    if config.speaker_column is not None:
        needed["data.csv.speaker_column"] = config.speaker_column
    if config.split_column is not None:
        needed["data.csv.split_column"] = config.split_column
    missing = {key: column for key, column in needed.items() if column not in table.columns}
    if missing:
        key, column = next(iter(missing.items()))
        raise ManifestError(f"{key} = '{column}' is not a column of '{table_path}'; its columns are "
                            f"{list(table.columns)}.")
    used = set(needed.values())
    extra_columns = [c for c in table.columns if c not in used and not c.startswith("Unnamed:")]
    candidates = []
    listed: set[str] = set()
    for number, (_, row) in enumerate(table.iterrows(), start=2):  # line 1 is the header
        relative = _value(row, config.path_column)
        if relative is None:
            candidates.append(Candidate(path=table_path, reason=f"line {number} of '{table_path.name}' has no "
                                                                 f"{config.path_column}", reject_as=TABLE_ROW))
            continue
        parts = PurePosixPath(relative.replace("\\", "/"))
        path = root / parts
        if parts.is_absolute() or ".." in parts.parts:
            candidates.append(Candidate(path=path, reason=f"path '{relative}' leaves the corpus root",
                                        reject_as=TABLE_ROW))
            continue
        label = _value(row, config.label_column)
        if label is None:  # a row's fault: its file, if no other row lists it, is counted as not in the table
            candidates.append(Candidate(path=path, reason=f"line {number} of '{table_path.name}': no value in "
                                                          f"column '{config.label_column}'", reject_as=TABLE_ROW))
            continue
        speaker = _value(row, config.speaker_column) if config.speaker_column else "unknown"
        if speaker is None:
            candidates.append(Candidate(path=path, reason=f"line {number} of '{table_path.name}': no value in "
                                                          f"column '{config.speaker_column}'", reject_as=TABLE_ROW))
            continue
        if not path.is_file():
            candidates.append(Candidate(path=path, reason=f"line {number} of '{table_path.name}' names '{relative}', "
                                                          f"which is not a file under the corpus root",
                                        reject_as=MISSING_FILE))
            continue
        if parts.as_posix() in listed:
            candidates.append(Candidate(path=path, reason=f"line {number} of '{table_path.name}' lists "
                                                          f"'{relative}' again", reject_as=DUPLICATE_ROW))
            continue
        listed.add(parts.as_posix())
        extras: dict[str, object] = {
            (f"csv_{c}" if c in _RESERVED else c): (None if pd.isna(row[c]) else row[c]) for c in extra_columns
        }
        extras["speaker_known"] = config.speaker_column is not None
        if config.split_column is not None:
            extras["given_split"] = _value(row, config.split_column) or ""
        utt = "__".join(parts.with_suffix("").parts)
        candidates.append(Candidate(path=path, utt_id=f"{dataset}_{utt}", speaker=f"{dataset}_{speaker}",
                                    label=label, extras=extras))
    for path in iter_audio_files(root):  # audio on disk that no row names: counted, never lost
        relative = path.relative_to(root).as_posix()
        if relative not in listed and not any(part.startswith(".") for part in relative.split("/")):
            candidates.append(Candidate(path=path, reason=f"'{relative}' is audio under the corpus root that "
                                                          f"'{table_path.name}' does not list", reject_as=NOT_IN_TABLE))
    return candidates
