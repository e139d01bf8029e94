"""Speaker folds, per-speaker normalisation, model selection on validation speakers."""

import numpy as np
import pandas as pd
import pytest

from vocalab.errors import ParamsError, VocalabError
from vocalab.evaluation import evaluate
from vocalab.features.store import FeatureStore, write_store
from vocalab.models.config import TrainConfig
from vocalab.models.normalize import speaker_standardise, speaker_standardise_frames
from vocalab.params import from_mapping
from vocalab.splits import SplitConfig, assign_splits, fold_names, fold_view, read_splits, speaker_overlap
from vocalab.training import load_model, train


def corpus(n_speakers=10, per_speaker=6):
    rows = [{"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": "ab"[i % 2], "gender": "mf"[s % 2]}
            for s in range(n_speakers) for i in range(per_speaker)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("folds,seed", [(2, 0), (3, 1), (5, 2), (4, 7)])
def test_speaker_folds_never_share_a_speaker_and_test_everyone_once(folds, seed):
    manifest = corpus(11)
    splits = assign_splits(manifest, SplitConfig(strategy="speaker_kfold", folds=folds, seed=seed))
    names = fold_names(splits)
    assert names == [f"split_{i}" for i in range(folds)]
    assert not speaker_overlap(splits)
    tested = []
    for name in names:
        view = fold_view(splits, name)
        by_split = {s: set(view.loc[view["split"] == s, "speaker"]) for s in ("train", "validation", "test")}
        assert by_split["train"] and by_split["validation"] and by_split["test"]
        assert not (by_split["train"] & by_split["test"]) and not (by_split["validation"] & by_split["test"])
        assert not (by_split["train"] & by_split["validation"])
        tested += sorted(by_split["test"])
    assert sorted(tested) == sorted(manifest["speaker"].unique())  # each speaker tested exactly once
    assert splits.equals(assign_splits(manifest, SplitConfig(strategy="speaker_kfold", folds=folds, seed=seed)))


def test_speaker_folds_round_trip_and_too_many_folds(tmp_path):
    manifest = corpus(6)
    splits = assign_splits(manifest, SplitConfig(strategy="speaker_kfold", folds=3))
    splits.to_csv(tmp_path / "splits.csv", index=False)
    assert fold_names(read_splits(tmp_path / "splits.csv", manifest)) == ["split_0", "split_1", "split_2"]
    with pytest.raises(ParamsError, match=r"split.folds = 6 needs at least 7 speakers.*has 6"):
        assign_splits(manifest, SplitConfig(strategy="speaker_kfold", folds=6))
    with pytest.raises(ParamsError, match=r"leave nothing to train on"):
        from_mapping(SplitConfig, {"strategy": "speaker_kfold", "folds": 2, "validation_fraction": 0.5},
                     section="split")


def test_speaker_normalisation_uses_only_that_speakers_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, (9, 4))
    speakers = ["a"] * 4 + ["b"] * 5
    out = speaker_standardise(X, speakers)
    np.testing.assert_allclose(out[:4].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(out[:4].std(0), 1, atol=1e-12)
    changed = X.copy()
    changed[4:] = changed[4:] * 100 + 7  # another speaker's features move ...
    np.testing.assert_array_equal(speaker_standardise(changed, speakers)[:4], out[:4])  # ... a's do not
    np.testing.assert_allclose(out[:4], (X[:4] - X[:4].mean(0)) / X[:4].std(0))
    frames = [rng.normal(2, 1, (n, 3)) for n in (5, 7, 4)]
    normed = speaker_standardise_frames(frames, ["a", "b", "a"])
    together = np.concatenate([frames[0], frames[2]])
    np.testing.assert_allclose(normed[0], (frames[0] - together.mean(0)) / together.std(0), rtol=1e-5)
    moved = speaker_standardise_frames([frames[0], frames[1] * 50, frames[2]], ["a", "b", "a"])
    np.testing.assert_array_equal(moved[0], normed[0])


@pytest.fixture
def shifted(tmp_path):
    """Each speaker's features are offset by a speaker constant far larger than the label effect."""
    rng = np.random.default_rng(3)
    manifest, frames = corpus(10, 8), []
    for row in manifest.itertuples():
        offset = 20.0 * int(row.speaker[1:])
        frames.append(rng.normal(offset + (1.0 if row.label == "a" else -1.0), 0.3, (5, 2)).astype(np.float32))
    write_store(tmp_path / "store", utt_ids=list(manifest["utt_id"]),
                frame_blocks=[(np.concatenate(frames), np.full(len(frames), 5))], total_frames=5 * len(frames),
                dim=2, dtype="float32", meta={"feature_set": "toy", "feature_names": ["x", "y"]})
    return FeatureStore(tmp_path / "store"), manifest


def test_kfold_pools_every_utterance_once_and_reports_spread(shifted, tmp_path):
    store, manifest = shifted
    splits = assign_splits(manifest, SplitConfig(strategy="speaker_kfold", folds=5))
    config = from_mapping(TrainConfig, {"model": "logreg", "normalize": "speaker"}, section="train")
    info, curves = train(store, manifest, splits, config, tmp_path / "model")
    assert len(info.folds) == 5 and sorted(curves["fold"].unique()) == [0, 1, 2, 3, 4]
    models, info = load_model(tmp_path / "model")
    metrics, predictions, _ = evaluate(models, info, store, manifest, splits, {"strategy": "speaker_kfold"})
    assert sorted(predictions["utt_id"]) == sorted(manifest["utt_id"])
    assert metrics["n_test"] == len(manifest) and metrics["protocol"]["folds"] == 5
    assert metrics["protocol"]["normalize"] == "speaker" and metrics["speaker_overlap"] is False
    assert len(metrics["folds"]["per_fold"]) == 5 and metrics["folds"]["uar_std"] >= 0
    assert metrics["folds"]["uar_mean"] == pytest.approx(np.mean([f["uar"] for f in metrics["folds"]["per_fold"]]),
                                                         abs=1e-4)
    # speaker offsets dwarf the label: per-speaker normalisation removes them
    assert metrics["uar"] == 1.0
    glob = from_mapping(TrainConfig, {"model": "logreg", "normalize": "global"}, section="train")
    train(store, manifest, splits, glob, tmp_path / "global")
    models, info = load_model(tmp_path / "global")
    assert evaluate(models, info, store, manifest, splits)[0]["uar"] < 0.9


def test_training_never_reads_test_speakers(shifted, tmp_path):
    store, manifest = shifted
    splits = assign_splits(manifest, SplitConfig(seed=0))
    test_rows = store.index_of(list(splits.loc[splits["split"] == "test", "utt_id"]))
    pooled = np.load(store.root / "pooled.npy")
    pooled[test_rows] = np.nan  # poison the test speakers: training must not notice
    np.save(store.root / "pooled.npy", pooled)
    config = from_mapping(TrainConfig, {"model": "svm", "search": {"svm": {"C": [0.01, 1.0]}}}, section="train")
    info, _ = train(FeatureStore(store.root), manifest, splits, config, tmp_path / "model")
    assert len(info.folds[0].candidates) == 2
    models, info = load_model(tmp_path / "model")
    with pytest.raises(VocalabError, match=r"NaN/inf for utterance"):
        evaluate(models, info, FeatureStore(store.root), manifest, splits)


def test_search_picks_the_best_validation_candidate(shifted, tmp_path):
    store, manifest = shifted
    splits = assign_splits(manifest, SplitConfig(seed=0))
    config = from_mapping(TrainConfig, {"model": "random_forest", "normalize": "speaker",
                                        "search": {"random_forest": {"max_depth": [1, 4], "n_estimators": [1, 20]},
                                                   "logreg": {"C": [0.1, 1]}}}, section="train")
    info, curves = train(store, manifest, splits, config, tmp_path / "model")
    fold = info.folds[0]
    scores = [c.validation_uar for c in fold.candidates]
    assert len(scores) == 4 and len(curves) == 4
    assert fold.chosen == int(np.argmax(scores))
    assert fold.to_dict()["chosen_params"] == fold.candidates[fold.chosen].params


@pytest.mark.parametrize("search,message", [
    ({"svm": {"gamma": [1]}}, r"'train.search.svm.gamma' is not a key of 'train.svm'.*searchable: C, kernel"),
    ({"svm": {"C": []}}, r"'train.search.svm.C' is an empty list"),
    ({"svm": {"C": [-1]}}, r"'train.search.svm.C' = -1.0 is out of range"),
    ({"svm": {"kernel": ["poly"]}}, r"'train.search.svm.kernel' = 'poly' is not allowed"),
    ({"logreg": {"C": [-1]}}, r"'train.search.logreg.C' = -1.0 is out of range"),  # checked, though not searched
    ({"C": [1]}, r"'train.search.C' is not a model: a grid is given per model"),
])
def test_bad_search_grid_is_refused_when_read(search, message):
    with pytest.raises(ParamsError, match=message):
        from_mapping(TrainConfig, {"model": "svm", "search": search}, section="train")


def test_search_without_validation_speakers_is_refused(shifted, tmp_path):
    store, manifest = shifted
    splits = assign_splits(manifest, SplitConfig(validation_fraction=0.0))
    config = from_mapping(TrainConfig, {"model": "logreg", "search": {"logreg": {"C": [0.1, 1]}}}, section="train")
    with pytest.raises(VocalabError, match=r"train.search compares candidates on validation speakers"):
        train(store, manifest, splits, config, tmp_path / "model")
