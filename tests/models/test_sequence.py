"""Sequence heads: they learn, they are deterministic on CPU, they weight layers, they reload exactly."""

import numpy as np
import pandas as pd
import pytest

from vocalab.evaluation import evaluate
from vocalab.features.store import FeatureStore, write_store
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping
from vocalab.splits import SplitConfig, assign_splits
from vocalab.training import load_model, train


def sequence_store(tmp_path, n_layers=1, informative_layer=0):
    """Labels differ in which feature carries a brief burst of 5 frames, at a random time, within noise."""
    rng = np.random.default_rng(0)
    rows, frames = [], []
    for s in range(8):
        for i in range(8):
            label = "one" if i % 2 else "zero"
            t = int(rng.integers(20, 40))
            layers = [rng.normal(0, 1.0, (t, 3)) for _ in range(n_layers)]
            start = int(rng.integers(0, t - 5))
            layers[informative_layer][start:start + 5, 1 if label == "one" else 0] += 4.0
            rows.append({"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": label})
            frames.append(np.concatenate(layers, axis=1).astype(np.float32))
    manifest = pd.DataFrame(rows)
    meta = {"feature_set": "toy", "feature_names": [f"f{i}" for i in range(3 * n_layers)]}
    if n_layers > 1:
        meta.update(layers=list(range(n_layers)), layer_dim=3)
    write_store(tmp_path / "store", utt_ids=list(manifest["utt_id"]),
                frame_blocks=[(np.concatenate(frames), np.array([len(f) for f in frames]))],
                total_frames=sum(len(f) for f in frames), dim=3 * n_layers, dtype="float32", meta=meta)
    return FeatureStore(tmp_path / "store"), manifest


TINY = {"epochs": 25, "batch_size": 8, "hidden": 16, "patience": 25, "learning_rate": 0.01, "max_frames": 30,
        "device": "cpu"}


@pytest.mark.parametrize("model", ["attentive", "cnn1d"])
def test_sequence_heads_learn_temporal_shape_and_are_deterministic(model, tmp_path):
    store, manifest = sequence_store(tmp_path)
    splits = assign_splits(manifest, SplitConfig(seed=0))
    config = from_mapping(TrainConfig, {"model": model, "sequence": TINY}, section="train")
    info, curves = train(store, manifest, splits, config, tmp_path / "a")
    assert list(curves["epoch"]) == list(range(1, len(curves) + 1)) and curves["train_loss"].notna().all()
    models, info = load_model(tmp_path / "a")
    metrics, predictions, _ = evaluate(models, info, store, manifest, splits)
    assert metrics["uar"] >= 0.9, metrics
    assert metrics["protocol"]["early_stopping"] == "validation UAR" and metrics["best_epoch"][0] >= 1
    train(store, manifest, splits, config, tmp_path / "b")
    again = evaluate(*load_model(tmp_path / "b")[::1], store, manifest, splits)[1]
    pd.testing.assert_frame_equal(predictions, again)  # seeded: same probabilities on a rerun


def test_vector_cnn_learns_a_pattern_along_the_pooled_vector_and_is_deterministic(tmp_path):
    """The notebook's CNN over one vector per clip: the class is where, along 40 features, a bump sits."""
    rng = np.random.default_rng(0)
    rows, vectors = [], []
    for s in range(8):
        for i in range(8):
            label = "late" if i % 2 else "early"
            vector = rng.normal(0, 0.5, 40)
            start = int(rng.integers(24, 32) if label == "late" else rng.integers(4, 12))
            vector[start:start + 4] += 3.0
            rows.append({"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": label})
            vectors.append(vector)
    manifest = pd.DataFrame(rows)
    names = [f"f{k}" for k in range(40)]
    pooled = np.array(vectors, dtype=np.float32)
    write_store(tmp_path / "store", utt_ids=list(manifest["utt_id"]),
                frame_blocks=[(pooled, np.ones(len(pooled), dtype=np.int64), pooled)], total_frames=len(pooled),
                dim=40, dtype="float32", meta={"feature_set": "vector", "feature_names": names,
                                               "pooled": "functionals", "pooled_names": names})
    store = FeatureStore(tmp_path / "store")
    splits = assign_splits(manifest, SplitConfig(seed=0))
    config = from_mapping(TrainConfig, {"model": "vector_cnn", "sequence": TINY}, section="train")
    info, _ = train(store, manifest, splits, config, tmp_path / "a")
    assert info.kind == "sequence" and info.n_features == 40
    assert info.folds[0].chosen_candidate.architecture["kind"] == "vector_cnn"
    models, info = load_model(tmp_path / "a")
    metrics, predictions, _ = evaluate(models, info, store, manifest, splits)
    assert metrics["uar"] >= 0.9, metrics
    train(store, manifest, splits, config, tmp_path / "b")
    pd.testing.assert_frame_equal(predictions, evaluate(*load_model(tmp_path / "b"), store, manifest, splits)[1])


def test_layer_weights_find_the_informative_layer(tmp_path):
    store, manifest = sequence_store(tmp_path, n_layers=3, informative_layer=2)
    splits = assign_splits(manifest, SplitConfig(seed=0))
    config = from_mapping(TrainConfig, {"model": "attentive", "sequence": {**TINY, "epochs": 40}}, section="train")
    train(store, manifest, splits, config, tmp_path / "m")
    models, info = load_model(tmp_path / "m")
    metrics = evaluate(models, info, store, manifest, splits)[0]
    weights = metrics["layer_weights"]
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-3)
    assert int(np.argmax(weights)) == 2, weights


def test_a_tampered_state_dict_is_refused(tmp_path):
    store, manifest = sequence_store(tmp_path)
    splits = assign_splits(manifest, SplitConfig(seed=0))
    config = from_mapping(TrainConfig, {"model": "cnn1d", "sequence": {**TINY, "epochs": 1}}, section="train")
    train(store, manifest, splits, config, tmp_path / "m")
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    (tmp_path / "m" / "model.pt").write_bytes(pickle.dumps({"x": Evil()}))
    from vocalab.errors import VocalabError

    with pytest.raises(VocalabError, match=r"model.pt' is not a state dict of this model"):
        load_model(tmp_path / "m")


def test_m5_learns_from_raw_waveforms_on_crops_and_scores_whole_clips(tmp_path):
    """A tiny waveform corpus: the two classes are tones an octave apart, in noise, at 8 kHz."""
    from tests.conftest import tone
    from vocalab.features.waveform import WaveformConfig, WaveformExtractor

    rng = np.random.default_rng(1)
    extractor = WaveformExtractor(WaveformConfig())
    rows, frames = [], []
    for s in range(8):
        for i in range(6):
            label = "high" if i % 2 else "low"
            seconds = float(rng.uniform(0.4, 0.9))
            signal = tone(440.0 if label == "high" else 220.0, sampling_rate=16000, duration_s=seconds, amplitude=0.3)
            signal = signal + rng.normal(0, 0.05, len(signal)).astype(np.float32)
            rows.append({"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": label})
            frames.append(extractor.extract(signal, 16000))
            assert frames[-1].shape == (-(-len(signal) // 2), 1)  # every sample, at half the rate
    manifest = pd.DataFrame(rows)
    write_store(tmp_path / "store", utt_ids=list(manifest["utt_id"]),
                frame_blocks=[(np.concatenate(frames), np.array([len(f) for f in frames]))],
                total_frames=sum(len(f) for f in frames), dim=1, dtype="float16",
                meta={**extractor.meta(), "feature_set": "waveform"})
    store = FeatureStore(tmp_path / "store")
    splits = assign_splits(manifest, SplitConfig(seed=0))
    config = from_mapping(TrainConfig, {"model": "m5", "normalize": "global",
                                        "sequence": {**TINY, "epochs": 12, "patience": 12, "waveform_crop": 3000}},
                          section="train")
    train(store, manifest, splits, config, tmp_path / "m5")
    models, info = load_model(tmp_path / "m5")
    metrics, predictions, _ = evaluate(models, info, store, manifest, splits)
    assert metrics["uar"] >= 0.9, metrics
    assert info.train.model == "m5" and len(predictions) == (splits["split"] == "test").sum()
