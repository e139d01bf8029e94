"""Train/validation/test assignment: speaker-independent by default, seeded.

With ``strategy: corpus`` one corpus of ``data.sources`` (``test_corpus``) is the whole
test set and the others train (validation speakers drawn from them): a cross-corpus test.
With ``strategy: speaker`` no speaker appears in two splits. Speakers are dealt
round-robin across genders (when the manifest has a ``gender`` column) so that
held-out speakers cover both. ``strategy: random`` splits utterances stratified
by label; it lets one speaker land on both sides, and every summary says so
(``speaker_overlap: true``). ``strategy: speaker_kfold`` deals speakers into
``folds`` folds; fold ``i`` is tested by a model trained on the others, with
validation speakers taken from the training folds, so every utterance is
tested exactly once by a model that never heard its speaker. ``strategy: given`` keeps the split that a corpus
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
from vocalab.manifest import speakers_known
from vocalab.params import bounded

SPLITS = ("train", "validation", "test")
#: names a corpus table may use for its splits
GIVEN_NAMES = {"train": "train", "training": "train", "dev": "validation", "val": "validation",
               "valid": "validation", "validation": "validation", "test": "test"}


@dataclass(frozen=True)
class SplitConfig:
    """``split``: how utterances are assigned to train / validation / test."""

    strategy: Literal["speaker", "speaker_kfold", "random", "given", "corpus"] = "speaker"
    test_fraction: float = bounded(0.25, gt=0.0, lt=1.0)  # speaker_kfold: 1 / folds instead
    validation_fraction: float = bounded(0.15, ge=0.0, lt=1.0)
    folds: int = bounded(5, ge=2, le=100)  # speaker_kfold only
    seed: int = bounded(0, ge=0)
    test_corpus: str | None = None  # strategy corpus: the data.sources name whose utterances are all the test

    def check(self, section: str) -> None:
        if self.strategy == "corpus" and not self.test_corpus:
            raise ParamsError(f"params key '{section}.strategy' = corpus tests on one whole corpus: set "
                              f"'{section}.test_corpus' to the name of one of data.sources.")
        if self.strategy == "speaker_kfold" and 1.0 / self.folds + self.validation_fraction >= 1.0:
            raise ParamsError(
                f"params keys '{section}.folds' = {self.folds} and '{section}.validation_fraction' = "
                f"{self.validation_fraction:g} leave nothing to train on: raise folds or lower validation_fraction."
            )
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


def _n_validation(n: int, config: SplitConfig) -> int:
    """Validation units out of ``n``: at least one unless ``validation_fraction`` is 0."""
    return max(1, round(config.validation_fraction * n)) if config.validation_fraction > 0 else 0


def _split_sizes(n: int, config: SplitConfig, unit: str) -> tuple[int, int]:
    n_test = max(1, round(config.test_fraction * n))
    n_val = _n_validation(n, config)
    if n - n_test - n_val < 1:
        raise ParamsError(
            f"only {n} {unit}(s): split.test_fraction={config.test_fraction} and "
            f"split.validation_fraction={config.validation_fraction} give {n_test} test and "
            f"{n_val} validation {unit}(s), leaving none to train on. Lower the fractions "
            f"or use a corpus with more {unit}s."
        )
    return n_test, n_val


def _speaker_order(manifest: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    """Speakers shuffled within each gender, then dealt alternately, so any prefix mixes genders."""
    if "gender" in manifest.columns:
        by_speaker = manifest.groupby("speaker")["gender"].first()
        genders = sorted(by_speaker.unique())
        groups = [sorted(by_speaker.index[by_speaker == g]) for g in genders]
    else:
        groups = [sorted(manifest["speaker"].unique())]
    return _interleave([list(rng.permutation(g)) for g in groups])


def _speaker_folds(manifest: pd.DataFrame, config: SplitConfig, order: list[str]) -> pd.DataFrame:
    """``utt_id, speaker, fold, split_0 .. split_{k-1}``: speaker ``order[j]`` is tested in fold ``j % k``."""
    k = config.folds
    if len(order) < k + 1:
        raise ParamsError(
            f"split.folds = {k} needs at least {k + 1} speakers (one per test fold and one to train on); "
            f"this corpus has {len(order)}. Lower split.folds."
        )
    fold_of = {speaker: j % k for j, speaker in enumerate(order)}
    n_val = _n_validation(len(order), config)
    table = pd.DataFrame({"utt_id": manifest["utt_id"], "speaker": manifest["speaker"]})
    table["fold"] = manifest["speaker"].map(fold_of).to_numpy()
    for i in range(k):
        rest = [s for s in order if fold_of[s] != i]
        if len(rest) - n_val < 1:
            raise ParamsError(
                f"fold {i} of split.folds = {k} has {len(rest)} training speaker(s) and "
                f"split.validation_fraction takes {n_val} of them. Lower validation_fraction or folds."
            )
        # validation speakers rotate through the training folds, so no speaker validates every fold
        start = (i * n_val) % len(rest)
        val = set((rest[start:] + rest[:start])[:n_val])
        split = np.where(table["fold"] == i, "test", np.where(table["speaker"].isin(val), "validation", "train"))
        table[f"split_{i}"] = split
    return table


def fold_names(splits: pd.DataFrame) -> list[str]:
    """The split columns of a splits table: ``["split"]``, or ``split_0 ..`` for speaker_kfold."""
    if "split" in splits.columns:
        return ["split"]
    names = sorted((c for c in splits.columns if c.startswith("split_")), key=fold_index)
    if not names:
        raise ManifestError("the splits table has no 'split' column. Rebuild it with: dvc repro split")
    return names


def fold_index(name: str) -> int:
    """The fold number of a split column: 0 for ``split``, ``i`` for ``split_i``."""
    return 0 if name == "split" else int(name.split("_", 1)[1])


def fold_view(splits: pd.DataFrame, name: str) -> pd.DataFrame:
    """``utt_id, speaker, split`` of one fold (``name`` from :func:`fold_names`)."""
    return pd.DataFrame({"utt_id": splits["utt_id"], "speaker": splits["speaker"], "split": splits[name]})


def _check_speakers(manifest: pd.DataFrame) -> None:
    """Speakers and labels that no speaker-independent split can use point at the corpus's reading, not the split."""
    speakers = manifest["speaker"].nunique()
    per_label = manifest.groupby("label")["speaker"].nunique()
    fix = "Check data.layout, and for layout folders data.folders.speaker_regex (the speaker in a file name)."
    if speakers == 1:
        raise ManifestError(f"the manifest names one speaker ({manifest['speaker'].iloc[0]!r}) for all "
                            f"{len(manifest)} files, so no speaker can be held out. {fix}")
    if len(per_label) > 2 and (per_label == 1).all() and speakers == len(per_label):
        raise ManifestError(f"each of the {len(per_label)} labels is spoken by one speaker of its own (e.g. "
                            f"{per_label.index[0]!r}): the class folders look like speaker folders, and a "
                            f"speaker-independent split can test no label it trained on. {fix}")


def assign_splits(manifest: pd.DataFrame, config: SplitConfig) -> pd.DataFrame:
    """Return a table ``utt_id, speaker, split`` in manifest order.

    With ``strategy: speaker_kfold`` the table is ``utt_id, speaker, fold, split_0 ..``
    instead: one split column per fold (see :func:`fold_names`, :func:`fold_view`).
    """
    rng = np.random.default_rng(config.seed)
    split = pd.Series("train", index=manifest.index, dtype=object)
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
    elif config.strategy in ("speaker", "speaker_kfold") and not speakers_known(manifest):
        raise ParamsError(f"split.strategy: {config.strategy} needs speakers, but the corpus table names none "
                          "(data.csv.speaker_column is null). Use split.strategy: given (the table's own split) "
                          "or random; both are reported as speaker_overlap: true.")
    elif config.strategy == "speaker_kfold":
        _check_speakers(manifest)
        return _speaker_folds(manifest, config, _speaker_order(manifest, rng))
    elif config.strategy == "corpus":
        split = _corpus_split(manifest, config, rng)
    elif config.strategy == "speaker":
        _check_speakers(manifest)
        order = _speaker_order(manifest, rng)
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


def _corpus_split(manifest: pd.DataFrame, config: SplitConfig, rng: np.random.Generator) -> pd.Series:
    """Cross-corpus: every utterance of ``test_corpus`` is test; validation speakers come from the other corpora."""
    corpora = sorted(manifest["dataset"].astype(str).unique())
    if config.test_corpus not in corpora:
        raise ParamsError(f"params key 'split.test_corpus' = {config.test_corpus!r} is not a corpus of this "
                          f"manifest; its corpora: {corpora}. Name one of data.sources.")
    if len(corpora) < 2:
        raise ParamsError(f"split.strategy: corpus tests on {config.test_corpus!r} and trains on the others, but the "
                          f"manifest holds no other corpus. List two or more corpora in data.sources.")
    held_out = manifest["dataset"].astype(str) == config.test_corpus
    unseen = sorted(set(manifest.loc[held_out, "label"]) - set(manifest.loc[~held_out, "label"]))
    if unseen:
        raise ManifestError(f"test corpus {config.test_corpus!r} has label(s) {unseen} that no training corpus has, "
                            f"so no model could predict them. Map them onto shared labels with data.label_map, "
                            f"or map them to null to leave those utterances out.")
    split = pd.Series("train", index=manifest.index, dtype=object)
    split[held_out] = "test"
    rest = manifest.loc[~held_out]
    order = _speaker_order(rest, rng)
    n_val = _n_validation(len(order), config)
    if len(order) - n_val < 1:
        raise ParamsError(f"the corpora other than {config.test_corpus!r} have {len(order)} speaker(s), and "
                          f"split.validation_fraction={config.validation_fraction} takes {n_val} for validation, "
                          f"leaving none to train on. Lower validation_fraction or add training corpora.")
    split[manifest["speaker"].isin(set(order[:n_val])) & ~held_out] = "validation"
    return split


def read_splits(path: Any, manifest: pd.DataFrame) -> pd.DataFrame:
    """Read the splits table and check it covers exactly the manifest's utterances."""
    splits = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = set(manifest["utt_id"]) - set(splits["utt_id"])
    if missing or len(splits) != len(manifest):
        raise ManifestError(
            f"splits '{path}' do not match the manifest ({len(missing)} utterance(s) have no split). "
            f"Rebuild them with: dvc repro split"
        )
    unknown = set().union(*(set(splits[name]) for name in fold_names(splits))) - set(SPLITS)
    if unknown:
        raise ManifestError(f"splits '{path}' use unknown split name(s) {sorted(unknown)}; allowed: {SPLITS}.")
    return splits


def speaker_overlap(splits: pd.DataFrame) -> bool:
    """True when, in any fold, a speaker has utterances in more than one split."""
    return any(bool((splits.groupby("speaker")[name].nunique() > 1).any()) for name in fold_names(splits))


def split_summary(splits: pd.DataFrame, manifest: pd.DataFrame, config: SplitConfig) -> dict[str, Any]:
    """What ``metrics/split.json`` records: sizes, speakers and label counts per split.

    For speaker_kfold the sizes are those of fold 0, and ``folds`` lists every
    fold's test and validation speakers.
    """
    names = fold_names(splits)
    summary: dict[str, Any] = {
        "strategy": config.strategy,
        "seed": config.seed,
        "speaker_overlap": speaker_overlap(splits),
    }
    if len(names) > 1:
        summary["folds"] = [
            {"test_speakers": sorted(splits.loc[splits[n] == "test", "speaker"].unique().tolist()),
             "validation_speakers": sorted(splits.loc[splits[n] == "validation", "speaker"].unique().tolist())}
            for n in names
        ]
    merged = manifest[["utt_id", "label"]].merge(fold_view(splits, names[0]), on="utt_id", validate="one_to_one")
    for name in SPLITS:
        part = merged[merged["split"] == name]
        summary[name] = {
            "n_utterances": int(len(part)),
            "n_speakers": int(part["speaker"].nunique()),
            "speakers": sorted(part["speaker"].unique().tolist()),
            "label_counts": {str(k): int(v) for k, v in sorted(Counter(part["label"]).items())},
        }
    return summary
