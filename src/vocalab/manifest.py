"""The validated utterance manifest: one row per usable audio file.

Columns (in order): ``utt_id, path, dataset, speaker, label, duration_s,
sample_rate, channels, format, subtype`` followed by corpus extras (gender,
intensity, statement, ...). Rows are sorted by ``utt_id``, ids are unique and
paths are relative to the project root.

Every file the corpus scanner finds is either a manifest row or a row of the
rejects table with a reason -- never silently dropped. The speaker split is a
separate table (see :mod:`vocalab.splits`) so that re-splitting does not
invalidate the features extracted from the manifest.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vocalab.errors import ManifestError

CORE_COLUMNS = [
    "utt_id", "path", "dataset", "speaker", "label",
    "duration_s", "sample_rate", "channels", "format", "subtype",
]
REJECT_COLUMNS = ["path", "utt_id", "reason", "detail"]

# reasons a file is rejected, as written in the rejects table and counted in metrics
UNPARSEABLE = "unparseable_name"
LEFT_OUT = "left_out_by_label_map"
NOT_IN_TABLE = "not_in_table"  # layout csv: an audio file on disk that the table does not list
#: layout csv: rows of the table that name no file on disk of their own; counted apart from the files
TABLE_ROW = "table_row"  # a row without a usable path, label or speaker
MISSING_FILE = "missing_file"  # a row naming a file that is not there
DUPLICATE_ROW = "duplicate_row"  # a row naming a file an earlier row named
TABLE_ROW_REASONS = (TABLE_ROW, MISSING_FILE, DUPLICATE_ROW)
UNREADABLE = "unreadable"
EMPTY = "empty"
SILENT = "silent"
NON_FINITE = "non_finite"
TOO_SHORT = "too_short"
DUPLICATE = "duplicate_utt_id"
TRUNCATED = "truncated"
CONFLICTING_LABELS = "conflicting_labels"

#: shorter clips carry no prosody to speak of (and give one padded frame): rejected, not guessed at
MIN_DURATION_S = 0.1


def validate_manifest(manifest: pd.DataFrame, *, source: str = "manifest", check_files: bool = False) -> None:
    """Check the manifest contract; raise ManifestError naming the first problem."""
    missing = [c for c in CORE_COLUMNS if c not in manifest.columns]
    if missing:
        raise ManifestError(
            f"{source} lacks column(s) {missing}. Rebuild it with the 'manifest' stage (dvc repro manifest)."
        )
    if manifest.empty:
        raise ManifestError(f"{source} has no rows. Check the corpus and the rejects file.")
    for column in ("utt_id", "path", "speaker", "label"):
        blank = manifest[column].isna() | (manifest[column].astype(str).str.strip() == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0])
            raise ManifestError(f"{source} row {row} has an empty '{column}'. Fix or remove that row.")
    duplicated = manifest["utt_id"][manifest["utt_id"].duplicated()]
    if not duplicated.empty:
        raise ManifestError(f"{source} has duplicate utt_id '{duplicated.iloc[0]}'. Ids must be unique.")
    if not manifest["utt_id"].is_monotonic_increasing:
        raise ManifestError(f"{source} is not sorted by utt_id. Rebuild it with the 'manifest' stage.")
    bad = manifest[~(manifest["duration_s"] > 0)]
    if not bad.empty:
        raise ManifestError(
            f"{source}: utterance '{bad['utt_id'].iloc[0]}' has duration_s={bad['duration_s'].iloc[0]}; "
            f"durations must be positive."
        )
    if check_files:
        for path in manifest["path"].astype(str):
            if not os.path.isfile(path):
                raise ManifestError(
                    f"{source} lists '{path}', which does not exist. Re-run 'dvc repro' from the project "
                    f"root: it brings the corpus back (or, for a local corpus that lost the file, indexes it again)."
                )


def speakers_known(manifest: pd.DataFrame) -> bool:
    """False when the corpus names no speakers (a csv table without a speaker column).

    Such rows carry ``speaker_known = False``; every other corpus names its speakers.
    """
    return "speaker_known" not in manifest.columns or not manifest["speaker_known"].astype(str).eq("False").any()


def write_manifest(manifest: pd.DataFrame, path: Path) -> None:
    validate_manifest(manifest, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(path, index=False)


def read_manifest(path: Path, *, check_files: bool = False) -> pd.DataFrame:
    """Read and validate a manifest CSV."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest '{path}' not found. Build it with: dvc repro manifest")
    manifest = pd.read_csv(path, dtype={"utt_id": str, "path": str, "speaker": str, "label": str},
                           keep_default_na=False, na_values=[""])
    validate_manifest(manifest, source=str(path), check_files=check_files)
    return manifest


def manifest_summary(manifest: pd.DataFrame, rejects: pd.DataFrame, *, n_other_files: int,
                     skipped: pd.DataFrame | None = None) -> dict[str, Any]:
    """Counts for ``metrics/manifest.json``: what was found, kept, rejected and skipped (and why).

    ``n_audio_files + n_other_files + n_skipped`` is every entry under the corpus root
    that is not a plain folder: nothing goes uncounted. Rejected rows of a csv layout's
    table that name no file of their own (no path, a missing file, a file listed twice)
    are counted apart, as ``n_table_rows_rejected``, so no file is counted twice.
    """
    skipped = pd.DataFrame(columns=["reason"]) if skipped is None else skipped
    table_rows = rejects["reason"].isin(TABLE_ROW_REASONS)
    return {
        "n_audio_files": int(len(manifest) + len(rejects) - table_rows.sum()),
        "n_table_rows_rejected": int(table_rows.sum()),
        "n_utterances": int(len(manifest)),
        "n_rejected": int(len(rejects)),
        "rejected_by_reason": dict(sorted(Counter(rejects["reason"]).items())),
        "n_other_files": int(n_other_files),
        "n_skipped": int(len(skipped)),
        "skipped_by_reason": dict(sorted(Counter(skipped["reason"]).items())),
        "n_speakers": int(manifest["speaker"].nunique()),
        "n_labels": int(manifest["label"].nunique()),
        "total_duration_s": round(float(manifest["duration_s"].sum()), 3),
    }
