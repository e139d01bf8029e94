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
                     cache_root=root / "scratch")
    store = FeatureStore(root / "handcrafted")
    splits = assign_splits(manifest, SplitConfig(seed=0))
    return root, store, manifest, splits


SPEAKER = r"^(?P<speaker>s\d+)_"  # the speaker in the test files' names


@pytest.mark.parametrize("settings", [
    {"model": "svm", "normalize": "global"},
    {"model": "svm"},  # normalize: speaker, the default
    {"model": "logreg", "normalize": "speaker"},
    {"model": "attentive", "sequence": {"epochs": 3, "hidden": 8, "device": "cpu"}},
    {"model": "vector_cnn", "sequence": {"epochs": 3, "hidden": 8, "device": "cpu"}},  # normalize: speaker
])
def test_predict_reproduces_the_evaluate_stage(trained, settings, tmp_path, monkeypatch):
    root, store, manifest, splits = trained
    config = from_mapping(TrainConfig, settings, section="train")
    train(store, manifest, splits, config, tmp_path / "model")
    _, predictions, _ = evaluate(*load_model(tmp_path / "model"), store, manifest, splits)
    files = manifest.set_index("utt_id").loc[predictions["utt_id"], "path"].tolist()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # each test speaker's files standardised together, as evaluate does (4 files each here)
    table = predict(files, tmp_path / "model", speaker_pattern=SPEAKER, min_speaker_files=2)
    assert table["label"].tolist() == predictions["predicted"].tolist()
    assert table["speaker"].tolist() == predictions["speaker"].tolist()
    if config.normalize == "speaker":
        assert set(table["normalised_by"]) == {f"speaker '{s}' (4 files)" for s in set(predictions["speaker"])}
    else:
        assert "normalised_by" not in table
    for label in ("high", "low"):
        np.testing.assert_allclose(table[f"p_{label}"], predictions[f"p_{label}"], atol=2e-4)


def test_predict_a_folder_of_a_fused_set_and_the_cli(trained, tmp_path, capsys):
    root, store, manifest, splits = trained
    fuse_stores("hc+hc", [store, store], tmp_path / "fused", layer_pooling="mean", weighting="equal")
    fused = FeatureStore(tmp_path / "fused")
    train(fused, manifest, splits, TrainConfig(normalize="global"), tmp_path / "model")
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
    assert capsys.readouterr().out.startswith("file,speaker,label,p_high,p_low")


def test_a_file_of_a_speaker_heard_too_little_goes_to_the_unknown_speaker_model(trained, tmp_path, capsys):
    root, store, manifest, splits = trained
    train(store, manifest, splits, TrainConfig(), tmp_path / "model")  # normalize: speaker
    test = manifest[manifest["utt_id"].isin(splits.loc[splits["split"] == "test", "utt_id"])]
    for _, row in test.iterrows():  # one file at a time, speaker unknown: no statistics of one sample
        table = predict([row["path"]], tmp_path / "model")
        assert table["normalised_by"].tolist() == ["unknown-speaker model (speaker unknown)"]
        assert table["label"].tolist() == [row["label"]]
    named = predict(test["path"].tolist()[:3], tmp_path / "model", speaker="ann")
    assert set(named["normalised_by"]) == {"unknown-speaker model ('ann' has 3 of the 10 files needed)"}
    assert named["label"].tolist() == test["label"].tolist()[:3]
    assert main(["predict", str(test["path"].iloc[0]), "--model", str(tmp_path / "model"), "--csv",
                 "--speaker", "ann", "--min-speaker-files", "2"]) == 0
    assert "unknown-speaker model ('ann' has 1 of the 2 files needed)" in capsys.readouterr().out


@pytest.mark.parametrize("settings", [{}, {"model": "logreg"}])
def test_different_recordings_of_unknown_speakers_get_different_answers(trained, settings, tmp_path):
    """Standardised by an average speaker, every new voice got the same probabilities; not any more."""
    root, store, manifest, splits = trained
    train(store, manifest, splits, from_mapping(TrainConfig, settings, section="train"), tmp_path / "model")
    low = manifest[manifest["label"] == "low"]["path"].iloc[0]
    high = manifest[manifest["label"] == "high"]["path"].iloc[-1]
    table = predict([low, high], tmp_path / "model")
    probabilities = table[["p_high", "p_low"]].to_numpy()
    assert not np.allclose(probabilities[0], probabilities[1], atol=0.02)
    if not settings:  # the default SVM on these tones: each recording gets its own label
        assert table["label"].tolist() == ["low", "high"]


def test_evaluate_reports_what_a_file_of_an_unknown_speaker_gets(trained, tmp_path):
    from vocalab.training import load_unknown_speaker_models

    root, store, manifest, splits = trained
    train(store, manifest, splits, TrainConfig(), tmp_path / "model")
    models, info = load_model(tmp_path / "model")
    assert info.unknown_speaker_model
    metrics, predictions, _ = evaluate(models, info, store, manifest, splits, None,
                                       load_unknown_speaker_models(tmp_path / "model", info))
    alone = metrics["unknown_speaker"]
    assert alone["n_test"] == len(predictions) and 0.0 <= alone["uar"] <= 1.0 and "global" in alone["path"]
    # a file predicted alone takes exactly this path: its label is the one counted here
    test = manifest.set_index("utt_id").loc[predictions["utt_id"]]
    singles = [predict([path], tmp_path / "model")["label"].iloc[0] for path in test["path"]]
    from vocalab.metrics import uar

    assert abs(uar(test["label"].tolist(), singles) - alone["uar"]) < 1e-4
    train(store, manifest, splits, TrainConfig(normalize="global"), tmp_path / "global")
    assert not load_model(tmp_path / "global")[1].unknown_speaker_model  # its own model serves every file


def test_bad_speaker_grouping_is_named(trained, tmp_path, capsys):
    root, store, manifest, splits = trained
    train(store, manifest, splits, TrainConfig(), tmp_path / "model")
    model = str(tmp_path / "model")
    assert main(["predict", str(root / "audio"), "--model", model, "--speaker-pattern", "^s(\\d+)"]) == 2
    assert "has no 'speaker' group" in capsys.readouterr().err
    assert main(["predict", str(root / "audio"), "--model", model, "--speaker-pattern", "(?P<speaker>x\\d)"]) == 2
    err = capsys.readouterr().err
    assert "finds no speaker in" in err and "s0_0.wav'" in err
    assert main(["predict", str(root / "audio"), "--model", model, "--speaker-pattern", "(?P<speaker>["]) == 2
    assert "not a valid regular expression" in capsys.readouterr().err
    (tmp_path / "model" / "unknown_speaker" / "model.skops").unlink()
    assert main(["predict", str(root / "audio" / "s0_0.wav"), "--model", model]) == 2
    assert "unknown_speaker/model.skops'. Train it with" in capsys.readouterr().err


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


def test_a_folder_with_unusable_files_predicts_the_rest_and_says_why(trained, tmp_path, capsys):
    root, store, manifest, splits = trained
    train(store, manifest, splits, TrainConfig(normalize="global"), tmp_path / "model")
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = folder / "good.wav"
    good.write_bytes(open(manifest["path"].iloc[1], "rb").read())
    (folder / "broken.wav").write_bytes(b"RIFF not really audio")
    write_wav(folder / "zeros.wav", np.zeros(16000, np.float32), 16000)
    write_wav(folder / "blip.wav", tone(440, duration_s=0.01), 16000)
    (folder / "notes.txt").write_text("not audio")
    (folder / "loop.wav").symlink_to(folder / "loop.wav")  # a link to itself
    (folder / "gone.wav").symlink_to(folder / "missing.wav")
    table = predict([folder], tmp_path / "model").set_index("file")
    assert table.loc[str(folder / "notes.txt"), "problem"].startswith("unsupported: ")
    for name in ("loop.wav", "gone.wav"):
        assert "broken link or a link loop" in table.loc[str(folder / name), "problem"]
    assert table.loc[str(good), "label"] == manifest["label"].iloc[1] and table.loc[str(good), "problem"] == ""
    assert table.loc[str(folder / "broken.wav"), "problem"].startswith("unreadable")
    assert table.loc[str(folder / "zeros.wav"), "problem"].startswith("silent")
    assert table.loc[str(folder / "blip.wav"), "problem"].startswith("too_short: ")
    assert table.loc[str(folder / "blip.wav"), "label"] != table.loc[str(folder / "blip.wav"), "label"]  # NaN
    model = str(tmp_path / "model")
    assert main(["predict", str(folder), "--model", model]) == 0
    out, err = capsys.readouterr()
    assert "good.wav" in out and "zeros.wav" not in out and err.count("predict: no prediction for") == 6
    assert main(["predict", str(folder), "--model", model, "--strict"]) == 2
