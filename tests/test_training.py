import json

import numpy as np
import pandas as pd
import pytest

from vocalab.errors import FeatureStoreError, VocalabError
from vocalab.evaluation import classification_metrics, evaluate
from vocalab.features.store import FeatureStore, write_store
from vocalab.models.config import TrainConfig
from vocalab.training import load_model, split_data, train


def test_metrics_known_answers():
    y_true = ["a", "a", "a", "a", "b", "b", "c", "c"]
    y_pred = ["a", "a", "a", "b", "b", "a", "c", "c"]
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == 0.75
    assert {k: v["recall"] for k, v in m["per_class"].items()} == {"a": 0.75, "b": 0.5, "c": 1.0}
    # precision of b: 1 of 2 predicted b are b; support counts true utterances
    assert m["per_class"]["b"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["a"]["precision"] == 0.75
    assert m["uar"] == pytest.approx((0.75 + 0.5 + 1.0) / 3, abs=1e-4)
    assert m["confusion"] == [[3, 1, 0], [1, 1, 0], [0, 0, 2]]
    # macro-F1: a: p=3/4 r=3/4 -> .75; b: p=1/2 r=1/2 -> .5; c: 1
    assert m["macro_f1"] == pytest.approx(0.75, abs=1e-4)


@pytest.fixture
def toy(tmp_path):
    """6 speakers x 6 utterances, 2 labels whose pooled features separate cleanly."""
    rng = np.random.default_rng(1)
    rows, frames = [], []
    for s in range(6):
        for i in range(6):
            label = "hi" if i % 2 else "lo"
            rows.append({"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": label})
            frames.append(rng.normal(3.0 if label == "hi" else -3.0, 1.0, (4, 3)).astype(np.float32))
    manifest = pd.DataFrame(rows)
    split = {"s0": "test", "s1": "test", "s2": "validation"}
    splits = pd.DataFrame({"utt_id": manifest["utt_id"], "speaker": manifest["speaker"],
                           "split": [split.get(s, "train") for s in manifest["speaker"]]})
    # store rows in reverse order: lookups must go by utt_id, not position
    order = list(range(len(rows)))[::-1]
    write_store(tmp_path / "store", utt_ids=[rows[i]["utt_id"] for i in order],
                frame_blocks=[(np.concatenate([frames[i] for i in order]), np.full(len(order), 4))],
                total_frames=4 * len(order), dim=3, dtype="float32",
                meta={"feature_set": "toy", "feature_names": ["x", "y", "z"], "pretrained": False})
    return FeatureStore(tmp_path / "store"), manifest, splits


def test_split_data_aligns_by_utt_id(toy):
    store, manifest, splits = toy
    data = split_data(store, manifest, splits, "test", layer_pooling="mean", normalize="global", sequences=False)
    assert data.sequences is None
    assert data.utt_ids == [f"s{s}_{i}" for s in (0, 1) for i in range(6)]
    np.testing.assert_array_equal(data.features[0], store.pooled[store.index_of(["s0_0"])[0]])


def test_train_then_evaluate_on_held_out_speakers(toy, tmp_path):
    store, manifest, splits = toy
    info, curves = train(store, manifest, splits, TrainConfig(feature_sets=("handcrafted",)), tmp_path / "model")
    assert info.folds[0].n_train == 18 and info.folds[0].n_train_speakers == 3 and info.n_features == 6
    assert len(curves) == 1 and curves["validation_uar"].iloc[0] == 1.0
    model, loaded = load_model(tmp_path / "model")
    assert loaded.labels == ["hi", "lo"] and loaded.features.feature_set == "toy"
    metrics, predictions, confusion = evaluate(model, loaded, store, manifest, splits)
    assert metrics["uar"] == 1.0 and metrics["n_test"] == 12 and metrics["n_test_speakers"] == 2
    assert metrics["speaker_overlap"] is False and metrics["pretrained"] is False
    assert metrics["validation"] == {"uar": 1.0} and metrics["chance_uar"] == 0.5  # scored before the refit
    assert metrics["protocol"]["final_fit"] == "training + validation speakers"
    assert confusion.tolist() == [[6, 0], [0, 6]]
    assert set(predictions["speaker"]) == {"s0", "s1"}
    assert metrics["protocol"]["model_selection"] == "validation speakers" and metrics["protocol"]["folds"] == 1
    assert set(metrics["per_class"]) == {"hi", "lo"}
    np.testing.assert_allclose(predictions[["p_hi", "p_lo"]].sum(axis=1), 1.0, atol=2e-4)
    json.dumps(metrics)  # plain JSON for dvc metrics


def test_label_missing_from_train_is_an_error(toy, tmp_path):
    store, manifest, splits = toy
    manifest = manifest.copy()
    manifest.loc[manifest["speaker"] == "s0", "label"] = "rare"
    with pytest.raises(VocalabError, match=r"label\(s\) \['rare'\] have no training utterance"):
        train(store, manifest, splits, TrainConfig(), tmp_path / "model")


def test_store_from_another_manifest_is_refused(toy, tmp_path):
    store, manifest, splits = toy
    manifest = manifest.copy()
    manifest.loc[18, "utt_id"] = "other"  # a training utterance
    splits = splits.copy()
    splits.loc[18, "utt_id"] = "other"
    with pytest.raises(FeatureStoreError, match=r"lacks 1 utterance\(s\).*'other'"):
        train(store, manifest, splits, TrainConfig(), tmp_path / "model")


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(VocalabError, match=r"no trained model in .*dvc repro train"):
        load_model(tmp_path)


def test_layer_pooling_of_a_multi_layer_store(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((7, 6)).astype(np.float32)  # 3 layers of 2 dims
    write_store(tmp_path / "s", utt_ids=["a", "b"], frame_blocks=[(frames, np.array([3, 4]))], total_frames=7,
                dim=6, dtype="float32", meta={"feature_set": "w", "feature_names": list("abcdef"),
                                              "layers": [0, 1, 2], "layer_dim": 2})
    store = FeatureStore(tmp_path / "s")
    rows = np.array([1])
    np.testing.assert_array_equal(store.pooled_matrix(rows, "concat"), store.pooled[rows])
    utt = frames[3:].reshape(4, 3, 2)
    expected = np.concatenate([utt.mean(0).mean(0), utt.std(0).mean(0)])
    np.testing.assert_allclose(store.pooled_matrix(rows, "mean")[0], expected, rtol=1e-5)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("classes"), r"lacks 'classes'"),
    (lambda m: m.update(kind="forest"), r"kind 'forest'"),
    (lambda m: m["folds"][0].update(chosen=7), r"fold 0 chose candidate 7 of 1"),
    (lambda m: m["folds"][0].update(n_train="many"), r"malformed 'n_train'"),
    (lambda m: m["features"].pop("dim"), r"features lacks 'dim'"),
])
def test_malformed_model_json_names_the_field(toy, tmp_path, edit, message):
    store, manifest, splits = toy
    train(store, manifest, splits, TrainConfig(), tmp_path / "model")
    path = tmp_path / "model" / "model.json"
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))
    with pytest.raises(VocalabError, match=message):
        load_model(tmp_path / "model")


def test_corrupt_model_json_is_a_clear_error(toy, tmp_path):
    store, manifest, splits = toy
    train(store, manifest, splits, TrainConfig(), tmp_path / "model")
    (tmp_path / "model" / "model.json").write_text("[1, 2")
    with pytest.raises(VocalabError, match=r"model\.json' cannot be read as JSON.*dvc repro"):
        load_model(tmp_path / "model")


def test_train_on_a_store_of_functionals(toy, tmp_path):
    _, manifest, splits = toy
    rng = np.random.default_rng(2)
    utt_ids = manifest["utt_id"].tolist()
    hi = (manifest["label"] == "hi").to_numpy()
    functionals = rng.normal(0.0, 1.0, (len(utt_ids), 5)).astype(np.float32)
    functionals[:, 0] += np.where(hi, 4.0, -4.0)
    write_store(tmp_path / "smile", utt_ids=utt_ids, total_frames=2 * len(utt_ids), dim=2, dtype="float32",
                frame_blocks=[(np.zeros((2 * len(utt_ids), 2), np.float32), np.full(len(utt_ids), 2), functionals)],
                meta={"feature_set": "smile", "feature_names": ["a", "b"], "pooled": "functionals",
                      "pooled_names": [f"f{k}" for k in range(5)]})
    store = FeatureStore(tmp_path / "smile")
    info, _ = train(store, manifest, splits, TrainConfig(), tmp_path / "model")
    assert info.n_features == 5 and info.features.pooled == "functionals"
    model, loaded = load_model(tmp_path / "model")
    metrics, _, _ = evaluate(model, loaded, store, manifest, splits)
    assert metrics["uar"] == 1.0


def test_speaker_normalisation_falls_back_to_global_where_speakers_are_unknown(toy, tmp_path):
    store, manifest, splits = toy
    info, _ = train(store, manifest, splits, TrainConfig(), tmp_path / "known")
    assert info.train.normalize == "speaker" and (tmp_path / "known" / "unknown_speaker" / "model.skops").is_file()
    unknown = manifest.assign(speaker_known=False)
    info, _ = train(store, unknown, splits, TrainConfig(), tmp_path / "unknown")
    assert info.train.normalize == "global" and not (tmp_path / "unknown" / "unknown_speaker").exists()
    assert not info.unknown_speaker_model
    model, loaded = load_model(tmp_path / "unknown")
    metrics, _, _ = evaluate(model, loaded, store, unknown, splits)
    assert metrics["protocol"]["normalize"] == "global"


def test_refit_learns_from_the_validation_speakers_and_never_the_test_speakers(toy, tmp_path):
    store, manifest, splits = toy
    train(store, manifest, splits, TrainConfig(normalize="global"), tmp_path / "refit")
    train(store, manifest, splits, TrainConfig(normalize="global", refit=False), tmp_path / "kept")
    [refit], _ = load_model(tmp_path / "refit")
    [kept], _ = load_model(tmp_path / "kept")
    assert refit[1].model["scale"].n_samples_seen_ == 24 and kept[1].model["scale"].n_samples_seen_ == 18
    metrics, _, _ = evaluate(*load_model(tmp_path / "kept"), store, manifest, splits)
    assert metrics["validation"]["accuracy"] == 1.0 and metrics["protocol"]["final_fit"] == "training speakers"
