import pandas as pd
import pytest

from vocalab.errors import ManifestError, ParamsError
from vocalab.splits import SplitConfig, assign_splits, read_splits, speaker_overlap, split_summary


def corpus(n_speakers=12, per_speaker=10, labels=("a", "b")):
    rows = []
    for s in range(n_speakers):
        for i in range(per_speaker):
            rows.append({"utt_id": f"u{s:02d}_{i:02d}", "speaker": f"spk{s:02d}",
                         "label": labels[i % len(labels)], "gender": "male" if s % 2 else "female"})
    return pd.DataFrame(rows)


def test_speaker_split_shares_no_speaker_and_is_seeded():
    manifest = corpus()
    splits = assign_splits(manifest, SplitConfig(test_fraction=0.25, validation_fraction=0.15, seed=1))
    assert not speaker_overlap(splits)
    per_split = splits.groupby("split")["speaker"].nunique()
    assert per_split.to_dict() == {"test": 3, "train": 7, "validation": 2}
    assert splits.equals(assign_splits(manifest, SplitConfig(seed=1)))
    assert not splits.equals(assign_splits(manifest, SplitConfig(seed=2)))
    test_genders = set(manifest.loc[splits["split"] == "test", "gender"])
    assert test_genders == {"male", "female"}


def test_every_seed_keeps_speakers_apart():
    manifest = corpus(n_speakers=9)
    for seed in range(20):
        assert not speaker_overlap(assign_splits(manifest, SplitConfig(seed=seed)))


def test_too_few_speakers_is_a_clear_error():
    with pytest.raises(ParamsError, match=r"only 2 speaker\(s\).*leaving none to train on"):
        assign_splits(corpus(n_speakers=2), SplitConfig())


def test_random_split_is_stratified_and_flags_overlap():
    manifest = corpus()
    config = SplitConfig(strategy="random", test_fraction=0.2, validation_fraction=0.1)
    splits = assign_splits(manifest, config)
    assert speaker_overlap(splits)
    summary = split_summary(splits, manifest, config)
    assert summary["speaker_overlap"] is True and summary["strategy"] == "random"
    assert summary["test"]["label_counts"] == {"a": 12, "b": 12}


def test_read_splits_checks_coverage(tmp_path):
    manifest = corpus(n_speakers=4)
    splits = assign_splits(manifest, SplitConfig(validation_fraction=0.0))
    path = tmp_path / "splits.csv"
    splits.iloc[:-1].to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"do not match the manifest \(1 utterance"):
        read_splits(path, manifest)
    bad = splits.copy()
    bad.loc[0, "split"] = "dev"
    bad.to_csv(path, index=False)
    with pytest.raises(ManifestError, match=r"unknown split name\(s\) \['dev'\]"):
        read_splits(path, manifest)


def _two_corpora():
    a, b = corpus(n_speakers=8), corpus(n_speakers=4)
    a["dataset"], b["dataset"] = "acted", "other"
    a["utt_id"], b["utt_id"] = "acted_" + a["utt_id"], "other_" + b["utt_id"]
    a["speaker"], b["speaker"] = "acted_" + a["speaker"], "other_" + b["speaker"]
    return pd.concat([a, b], ignore_index=True)


def test_a_corpus_held_out_whole_is_the_test_and_validation_comes_from_the_others():
    manifest = _two_corpora()
    splits = assign_splits(manifest, SplitConfig(strategy="corpus", test_corpus="other"))
    joined = splits.merge(manifest[["utt_id", "dataset"]], on="utt_id")
    assert (joined.loc[joined["dataset"] == "other", "split"] == "test").all()
    assert set(joined.loc[joined["dataset"] == "acted", "split"]) == {"train", "validation"}
    assert not speaker_overlap(splits)


def test_cross_corpus_mistakes_are_named():
    manifest = _two_corpora()
    with pytest.raises(ParamsError, match=r"'split.test_corpus' = 'nope' is not a corpus of this manifest; its "
                                          r"corpora: \['acted', 'other'\]"):
        assign_splits(manifest, SplitConfig(strategy="corpus", test_corpus="nope"))
    with pytest.raises(ParamsError, match="holds no other corpus"):
        assign_splits(manifest[manifest["dataset"] == "acted"], SplitConfig(strategy="corpus", test_corpus="acted"))
    relabelled = manifest.copy()
    relabelled.loc[relabelled["dataset"] == "other", "label"] = "bored"
    with pytest.raises(ManifestError, match=r"label\(s\) \['bored'\] that no training corpus has"):
        assign_splits(relabelled, SplitConfig(strategy="corpus", test_corpus="other"))
    with pytest.raises(ParamsError, match="set 'split.test_corpus'"):
        SplitConfig(strategy="corpus").check("split")
