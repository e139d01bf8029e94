"""Train/validation/test assignment: speaker-independent by default, seeded.

With ``strategy: speaker`` no speaker appears in two splits. Speakers are dealt
round-robin across genders (when the manifest has a ``gender`` column) so that
held-out speakers cover both. ``strategy: random`` splits utterances stratified
by label; it lets one speaker land on both sides, and every summary says so
(``speaker_overlap: true``). ``strategy: given`` keeps the split that a corpus
table brings (``data.csv.split_column``); the summaries say whether it shares
speakers, and a table without speakers counts as sharing them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from vocalab.errors import ManifestError, ParamsError
from vocalab.params import bounded

SPLITS = ("train", "validation", "test")
#: names a corpus table may use for its splits
GIVEN_NAMES = {"train": "train", "training": "train", "dev": "validation", "val": "validation",
               "valid": "validation", "validation": "validation", "test": "test"}


@dataclass(frozen=True)
class SplitConfig:
    """``split``: how utterances are assigned to train / validation / test."""

    strategy: Literal["speaker", "random", "given"] = "speaker"
    test_fraction: float = bounded(0.25, gt=0.0, lt=1.0)
    validation_fraction: float = bounded(0.15, ge=0.0, lt=1.0)
    seed: int = bounded(0, ge=0)

    def check(self, section: str) -> None:
        if self.test_fraction + self.validation_fraction >= 1.0:
            raise ParamsError(
                f"params keys '{section}.test_fraction' + '{section}.validation_fraction' = "
                f"{self.test_fraction + self.validation_fraction:g} leave nothing to train on: "
                f"their sum must be < 1."
            )


def _interleave(groups: list[list[str]]) -> list[str]:
    """Round-robin merge: a0, b0, a1, b1, ... (longer groups run on at the end)."""
    order = []
    for i in range(max(len(g) for g in groups)):
        order.extend(g[i] for g in groups if i < len(g))
    return order


def _split_sizes(n: int, config: SplitConfig, unit: str) -> tuple[int, int]:
    n_test = max(1, round(config.test_fraction * n))
    n_val = max(1, round(config.validation_fraction * n)) if config.validation_fraction > 0 else 0
    if n - n_test - n_val < 1:
        raise ParamsError(
            f"only {n} {unit}(s): split.test_fraction={config.test_fraction} and "
            f"split.validation_fraction={config.validation_fraction} give {n_test} test and "
            f"{n_val} validation {unit}(s), leaving none to train on. Lower the fractions "
            f"or use a corpus with more {unit}s."
        )
    return n_test, n_val


def assign_splits(manifest: pd.DataFrame, config: SplitConfig) -> pd.DataFrame:
    """Return a table ``utt_id, speaker, split`` in manifest order."""
    rng = np.random.default_rng(config.seed)
    split = pd.Series("train", index=manifest.index, dtype=object)
    # a csv table without speaker ids marks its rows speaker_known = False (other corpora leave it empty)
    speakers_known = "speaker_known" not in manifest.columns or not manifest["speaker_known"].astype(str).eq(
        "False").any()
    if config.strategy == "given":
        if "given_split" not in manifest.columns:
            raise ParamsError("split.strategy: given uses the corpus table's own split, but this manifest has "
                              "none. Set data.csv.split_column (layout csv), or use strategy speaker.")
        names = manifest["given_split"].fillna("").astype(str).str.strip().str.lower()
        unknown = sorted(set(names) - set(GIVEN_NAMES))
        if unknown:
            raise ManifestError(f"the corpus table's split column holds {unknown}; split.strategy: given "
                                f"understands {sorted(GIVEN_NAMES)}. Fix those rows.")
        split = names.map(GIVEN_NAMES)
    elif config.strategy == "speaker" and not speakers_known:
        raise ParamsError("split.strategy: speaker needs speakers, but the corpus table names none "
                          "(data.csv.speaker_column is null). Use split.strategy: given (the table's own split) "
                          "or random; both are reported as speaker_overlap: true.")
    elif config.strategy == "speaker":
        if "gender" in manifest.columns:
            by_speaker = manifest.groupby("speaker")["gender"].first()
            genders = sorted(by_speaker.unique())
            groups = [sorted(by_speaker.index[by_speaker == g]) for g in genders]
        else:
            groups = [sorted(manifest["speaker"].unique())]
        groups = [list(rng.permutation(g)) for g in groups]
        order = _interleave(groups)
        n_test, n_val = _split_sizes(len(order), config, "speaker")
        test, val = set(order[:n_test]), set(order[n_test:n_test + n_val])
        split[manifest["speaker"].isin(test)] = "test"
        split[manifest["speaker"].isin(val)] = "validation"
    else:
        # stratified by label: every class is represented in each split where possible
        for _, index in manifest.groupby("label").groups.items():
            index = rng.permutation(np.asarray(index))
            n = len(index)
            n_test = int(round(config.test_fraction * n))
            n_val = int(round(config.validation_fraction * n))
            split[index[:n_test]] = "test"
            split[index[n_test:n_test + n_val]] = "validation"
        if not (split == "train").any():
            raise ParamsError("split.strategy=random left no training utterance. Lower the fractions.")
    return pd.DataFrame({"utt_id": manifest["utt_id"], "speaker": manifest["speaker"], "split": split.to_numpy()})


def read_splits(path: Any, manifest: pd.DataFrame) -> pd.DataFrame:
    """Read the splits table and check it covers exactly the manifest's utterances."""
    splits = pd.read_csv(path, dtype={"utt_id": str, "speaker": str, "split": str}, keep_default_na=False)
    missing = set(manifest["utt_id"]) - set(splits["utt_id"])
    if missing or len(splits) != len(manifest):
        raise ManifestError(
            f"splits '{path}' do not match the manifest ({len(missing)} utterance(s) have no split). "
            f"Rebuild them with: dvc repro split"
        )
    unknown = set(splits["split"]) - set(SPLITS)
    if unknown:
        raise ManifestError(f"splits '{path}' use unknown split name(s) {sorted(unknown)}; allowed: {SPLITS}.")
    return splits


def speaker_overlap(splits: pd.DataFrame) -> bool:
    """True when any speaker has utterances in more than one split."""
    return bool((splits.groupby("speaker")["split"].nunique() > 1).any())


def split_summary(splits: pd.DataFrame, manifest: pd.DataFrame, config: SplitConfig) -> dict[str, Any]:
    """What ``metrics/split.json`` records: sizes, speakers and label counts per split."""
    merged = manifest[["utt_id", "label"]].merge(splits, on="utt_id", validate="one_to_one")
    summary: dict[str, Any] = {
        "strategy": config.strategy,
        "seed": config.seed,
        "speaker_overlap": speaker_overlap(splits),
    }
    for name in SPLITS:
        part = merged[merged["split"] == name]
        summary[name] = {
            "n_utterances": int(len(part)),
            "n_speakers": int(part["speaker"].nunique()),
            "speakers": sorted(part["speaker"].unique().tolist()),
            "label_counts": {str(k): int(v) for k, v in sorted(Counter(part["label"]).items())},
        }
    return summary
