"""vocalab predict: the evaluate stage's prediction for the same file, offline, with clear refusals."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tone, write_wav
from vocalab.cli import main
from vocalab.evaluation import evaluate
from vocalab.features.extraction import extract_manifest
from vocalab.features.fusion import fuse_stores
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
from vocalab.features.store import FeatureStore
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping
from vocalab.predict import predict
from vocalab.splits import SplitConfig, assign_splits
from vocalab.training import load_model, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A handcrafted store of low and high tones from 6 speakers, a model per model kind."""
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    rows = []
    for s in range(6):
        for i in range(4):
            label = "high" if i % 2 else "low"
            f0 = (1800 if label == "high" else 300) * (1 + 0.05 * s) + 10 * i
            samples = tone(f0, duration_s=0.6 + 0.1 * i) + 0.05 * rng.standard_normal(int(16000 * (0.6 + 0.1 * i)))
            path = write_wav(root / "audio" / f"s{s}_{i}.wav", samples.astype(np.float32) * 0.3, 16000)
            rows.append({"utt_id": f"s{s}_{i}", "path": str(path), "speaker": f"s{s}", "label": label,
                         "duration_s": 0.6 + 0.1 * i})
    manifest = pd.DataFrame(rows)
    extractor = HandcraftedExtractor(HandcraftedConfig(n_mfcc=8))
    extract_manifest(manifest, extractor, root / "handcrafted", workers=1, progress=False,
                     scratch_root=root / "scratch")
    store = FeatureStore(root / "handcrafted")
    splits = assign_splits(manifest, SplitConfig(seed=0))
    return root, store, manifest, splits


@pytest.mark.parametrize("settings", [
    {"model": "svm"},
    {"model": "logreg", "normalize": "speaker"},
    {"model": "attentive", "sequence": {"epochs": 3, "hidden": 8, "device": "cpu"}},
])
def test_predict_reproduces_the_evaluate_stage(trained, settings, tmp_path, monkeypatch):
    root, store, manifest, splits = trained
    config = from_mapping(TrainConfig, settings, section="train")
    train(store, manifest, splits, config, tmp_path / "model")
    _, predictions, _ = evaluate(*load_model(tmp_path / "model"), store, manifest, splits)
    if settings.get("normalize") == "speaker":
        # one speaker at a time: predict standardises the given files together, as one speaker
        speaker = predictions["speaker"].iloc[0]
        predictions = predictions[predictions["speaker"] == speaker]
    files = manifest.set_index("utt_id").loc[predictions["utt_id"], "path"].tolist()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    table = predict(files, tmp_path / "model")
    assert table["label"].tolist() == predictions["predicted"].tolist()
    for label in ("high", "low"):
        np.testing.assert_allclose(table[f"p_{label}"], predictions[f"p_{label}"], atol=2e-4)


def test_predict_a_folder_of_a_fused_set_and_the_cli(trained, tmp_path, capsys):
    root, store, manifest, splits = trained
    fuse_stores("hc+hc", store, store, tmp_path / "fused", layer_pooling="mean")
    fused = FeatureStore(tmp_path / "fused")
    train(fused, manifest, splits, TrainConfig(), tmp_path / "model")
    _, predictions, _ = evaluate(*load_model(tmp_path / "model"), fused, manifest, splits)
    table = predict([root / "audio"], tmp_path / "model")
    assert len(table) == len(manifest)  # every file under the folder
    by_file = table.set_index("file")["label"]
    expected = manifest.set_index("utt_id").loc[predictions["utt_id"], "path"]
    assert by_file.loc[expected.tolist()].tolist() == predictions["predicted"].tolist()
    assert main(["predict", str(expected.iloc[0]), "--model", str(tmp_path / "model"), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records[0]["label"] == predictions["predicted"].iloc[0] and {"p_high", "p_low"} <= set(records[0])
    assert main(["predict", str(expected.iloc[0]), "--model", str(tmp_path / "model"), "--csv"]) == 0
    assert capsys.readouterr().out.startswith("file,label,p_high,p_low")


def test_unreadable_audio_and_missing_inputs_are_named(trained, tmp_path, capsys):
    root, store, manifest, splits = trained
    train(store, manifest, splits, TrainConfig(), tmp_path / "model")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really audio")
    assert main(["predict", str(broken), "--model", str(tmp_path / "model")]) == 2
    assert "broken.wav" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope.wav"), "--model", str(tmp_path / "model")]) == 2
    assert "nope.wav' does not exist" in capsys.readouterr().err
    assert main(["predict", str(broken), "--model", str(tmp_path / "nowhere")]) == 2
    assert "no trained model in" in capsys.readouterr().err


def test_a_foreign_skops_file_is_refused(trained, tmp_path, capsys):
    import skops.io
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    root, store, manifest, splits = trained
    train(store, manifest, splits, TrainConfig(), tmp_path / "model")
    import os

    skops.io.dump(Pipeline([("f", FunctionTransformer(os.system))]), tmp_path / "model" / "model.skops")
    assert main(["predict", str(root / "audio"), "--model", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "contains types this project never saves" in err and "system" in err
    skops.io.dump(Pipeline([("f", FunctionTransformer(np.exp))]), tmp_path / "model" / "model.skops")
    assert main(["predict", str(root / "audio"), "--model", str(tmp_path / "model")]) == 2
    assert "predicts None, but its model.json lists ['high', 'low']" in capsys.readouterr().err
