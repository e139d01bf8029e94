"""A ready-made audio-classification checkpoint: run as the pipeline runs it, its labels mapped, scored, predicted."""

import dataclasses
import numpy as np
import pandas as pd
import pytest

from tests.conftest import tone, write_wav
from vocalab.errors import ParamsError, VocalabError, WeightsError
from vocalab.evaluation import evaluate
from vocalab.features.checkpoint import CheckpointExtractor, CheckpointExtractorConfig
from vocalab.features.extraction import extract_manifest
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
from vocalab.features.store import FeatureStore
from vocalab.models.checkpoint import CheckpointMapping, label_mapping, unreachable
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping
from vocalab.predict import predict
from vocalab.splits import SplitConfig, assign_splits
from vocalab.testing.encoders_tiny import save_tiny_encoder
from vocalab.training import load_model, train

LABELS = ("ang", "hap", "neu", "sad")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_encoder(tmp_path_factory.mktemp("checkpoint") / "ser", "wav2vec2", head=True, labels=LABELS)


def test_probabilities_are_the_audio_classification_pipelines(checkpoint):
    from transformers import pipeline

    signal = (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32)
    extractor = CheckpointExtractor(CheckpointExtractorConfig(model=str(checkpoint), device="cpu"))
    frames, pooled = extractor.extract(signal, 16000)
    expected = {row["label"]: row["score"]
                for row in pipeline("audio-classification", model=str(checkpoint), top_k=None, device="cpu")(signal)}
    assert extractor.feature_names == list(LABELS) and frames.shape == (1, 4)
    np.testing.assert_allclose(pooled, [expected[label] for label in LABELS], rtol=1e-5)
    assert extractor.meta()["pooled_names"] == list(LABELS) and extractor.meta()["pooled"] == "functionals"


def test_a_long_recording_is_classified_in_windows_averaged_by_length(checkpoint):
    signal = (0.1 * np.random.default_rng(1).standard_normal(40000)).astype(np.float32)  # 2.5 s
    extractor = CheckpointExtractor(CheckpointExtractorConfig(model=str(checkpoint), device="cpu", chunk_s=1.0))
    frames, pooled = extractor.extract(signal, 16000)
    windows = [signal[:16000], signal[16000:32000], signal[32000:]]
    assert frames.shape == (3, 4)
    for frame, window in zip(frames, windows):
        np.testing.assert_allclose(frame, extractor.probabilities(window), rtol=1e-5)
    np.testing.assert_allclose(pooled, np.average(frames, axis=0, weights=[2, 2, 1]), rtol=1e-5)


def test_a_checkpoint_that_is_not_a_classifier_or_a_bad_source_is_named(tmp_path, checkpoint):
    encoder = save_tiny_encoder(tmp_path / "encoder", "wav2vec2")  # no head: no labels
    with pytest.raises(WeightsError, match="not an audio classifier.*embeddings.encoder"):
        CheckpointExtractor(CheckpointExtractorConfig(model=str(encoder), device="cpu"))
    with pytest.raises(WeightsError, match="nothing exists there"):
        CheckpointExtractor(CheckpointExtractorConfig(model=str(tmp_path / "missing"), device="cpu"))
    weights = next(checkpoint.glob("*.safetensors"))
    with pytest.raises(WeightsError, match="save_pretrained"):
        CheckpointExtractor(CheckpointExtractorConfig(model=str(weights), device="cpu"))


def test_the_label_map_is_checked_against_both_label_sets():
    classes = ["anger", "happiness", "neu", "sadness", "boredom"]
    mapping = label_mapping(LABELS, classes, {"ang": "anger", "hap": "happiness", "sad": "sadness"})
    assert mapping == {"ang": "anger", "hap": "happiness", "neu": "neu", "sad": "sadness"}  # neu: same name
    assert unreachable(mapping, classes) == ["boredom"]
    with pytest.raises(VocalabError, match=r"predicts \['hap'\].*hap: <corpus label or null>"):
        label_mapping(LABELS, classes, {"ang": "anger", "sad": "sadness"})
    with pytest.raises(VocalabError, match=r"label_map.hap' = 'joy' is not a label of the corpus"):
        label_mapping(LABELS, classes, {"ang": "anger", "hap": "joy", "sad": "sadness"})
    with pytest.raises(VocalabError, match=r"maps \['angry'\], which the checkpoint does not predict"):
        label_mapping(LABELS, classes, {"angry": "anger", "ang": "anger", "hap": None, "sad": None})
    with pytest.raises(VocalabError, match="leaves every checkpoint label out"):
        label_mapping(["a", "b"], classes, {"a": None, "b": None})


def test_mapped_probabilities_add_up_and_left_out_labels_are_renormalised():
    model = CheckpointMapping(LABELS, {"ang": "loud", "hap": "loud", "neu": "calm", "sad": None}, ["calm", "loud"])
    proba = model.predict_proba(np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(proba, [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(model.predict_proba(np.array([[0.4, 0.2, 0.3, 0.1]])), [[1 / 3, 2 / 3]])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, checkpoint):
    """Six speakers' tones, labelled in the corpus's own words, and the checkpoint's store of them."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    for s in range(6):
        for i, label in enumerate(("anger", "joy", "neutral", "anger", "joy", "neutral")):
            samples = tone(200 + 150 * i + 20 * s, duration_s=0.8) + 0.05 * rng.standard_normal(12800)
            path = write_wav(root / "audio" / f"s{s}_{i}.wav", samples.astype(np.float32) * 0.3, 16000)
            rows.append({"utt_id": f"s{s}_{i}", "path": str(path), "speaker": f"s{s}", "label": label,
                         "duration_s": 0.8})
    manifest = pd.DataFrame(rows)
    extractor = CheckpointExtractor(CheckpointExtractorConfig(model=str(checkpoint), device="cpu"))
    extract_manifest(manifest, extractor, root / "checkpoint", workers=1, progress=False, cache_root=root / "scratch")
    splits = assign_splits(manifest, SplitConfig(strategy="speaker_kfold", folds=3, seed=0))
    return root, FeatureStore(root / "checkpoint"), manifest, splits


CONFIG = {"feature_sets": ["checkpoint", "handcrafted"], "model": "logreg", "models": {"checkpoint": "checkpoint"},
          "checkpoint": {"label_map": {"ang": "anger", "hap": "joy", "neu": "neutral", "sad": None}}}


def test_the_checkpoint_is_scored_on_held_out_speakers_and_predict_agrees(corpus, tmp_path):
    root, store, manifest, splits = corpus
    config = from_mapping(TrainConfig, CONFIG, section="train").for_set("checkpoint")
    assert config.model == "checkpoint"
    info, _ = train(store, manifest, splits, config, tmp_path / "model")
    assert info.kind == "checkpoint" and info.train.normalize == "global"  # probabilities are not standardised
    models, info = load_model(tmp_path / "model")
    metrics, predictions, _ = evaluate(models, info, store, manifest, splits, {"strategy": "speaker_kfold"})
    assert len(predictions) == len(manifest) and metrics["classifier"] == "checkpoint"
    assert metrics["checkpoint"]["unreachable_labels"] == []
    assert metrics["protocol"]["final_fit"].startswith("none here")
    from vocalab.summary import leaderboard_markdown, set_summary

    row = {**set_summary("checkpoint", predictions, info), "speaker_overlap": False}
    assert "a ready-made checkpoint, not trained here" in leaderboard_markdown({"checkpoint": row})
    # the decision is the mapped probabilities' argmax, from the stored probabilities
    pooled = store.pooled_matrix(store.index_of(predictions["utt_id"].tolist()), "mean")
    mapped = np.stack([pooled[:, 0], pooled[:, 1], pooled[:, 2]], axis=1)  # anger, joy, neutral
    expected = np.array(["anger", "joy", "neutral"])[mapped.argmax(axis=1)]
    assert predictions["predicted"].tolist() == expected.tolist()
    table = predict(predictions["utt_id"].map(manifest.set_index("utt_id")["path"]).tolist(), tmp_path / "model")
    assert table["label"].tolist() == predictions["predicted"].tolist()
    np.testing.assert_allclose(table["p_joy"], predictions["p_joy"], atol=2e-4)


def test_a_corpus_label_it_cannot_produce_is_reported(corpus, tmp_path):
    root, store, manifest, splits = corpus
    config = from_mapping(TrainConfig, {**CONFIG, "checkpoint": {"label_map": {"ang": "anger", "hap": None,
                                                                               "neu": "neutral", "sad": None}}},
                          section="train").for_set("checkpoint")
    train(store, manifest, splits, config, tmp_path / "model")
    metrics, _, _ = evaluate(*load_model(tmp_path / "model"), store, manifest, splits)
    assert metrics["checkpoint"]["unreachable_labels"] == ["joy"]
    assert metrics["per_class"]["joy"]["recall"] == 0.0


def test_the_checkpoint_model_refuses_other_sets_and_any_model_learns_from_its_probabilities(corpus, tmp_path):
    root, store, manifest, splits = corpus
    extract_manifest(manifest, HandcraftedExtractor(HandcraftedConfig(n_mfcc=8)), root / "handcrafted", workers=1,
                     progress=False, cache_root=root / "scratch")
    config = from_mapping(TrainConfig, CONFIG, section="train")
    with pytest.raises(VocalabError, match=r"holds features.*train.models: \{checkpoint: checkpoint\}"):
        train(FeatureStore(root / "handcrafted"), manifest, splits, dataclasses.replace(config, model="checkpoint"),
              tmp_path / "bad")
    assert config.for_set("handcrafted").model == "logreg"
    info, _ = train(store, manifest, splits, from_mapping(TrainConfig, {"model": "logreg"}, section="train"),
                    tmp_path / "logreg")  # a model stacked on the checkpoint's probabilities
    assert info.kind == "pooled" and info.n_features == 4


def test_per_set_models_are_checked():
    with pytest.raises(ParamsError, match=r"train.models.waveform' gives a model to 'waveform'"):
        from_mapping(TrainConfig, {"feature_sets": ["handcrafted"], "models": {"waveform": "m5"}}, section="train")
    with pytest.raises(ParamsError, match=r"train.models.handcrafted' = 'logref' is not a model.*logreg"):
        from_mapping(TrainConfig, {"feature_sets": ["handcrafted"], "models": {"handcrafted": "logref"}},
                     section="train")
    with pytest.raises(ParamsError, match="label_map"):
        from_mapping(TrainConfig, {"checkpoint": {"label_map": {"ang": 3}}}, section="train")
