"""train.model: finetune: a pretrained encoder fine-tuned end to end on waveforms, stopped on validation speakers."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import tone
from vocalab.errors import VocalabError
from vocalab.evaluation import evaluate
from vocalab.features.store import FeatureStore, write_store
from vocalab.features.waveform import WaveformConfig, WaveformExtractor
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping
from vocalab.splits import SplitConfig, assign_splits
from vocalab.testing.encoders_tiny import save_tiny_encoder
from vocalab.training import load_model, train


@pytest.fixture(scope="module")
def waveforms(tmp_path_factory):
    """Tones an octave apart in noise, 6 speakers, as the waveform set stores them at 16 kHz; a tiny encoder."""
    root = tmp_path_factory.mktemp("finetune")
    rng = np.random.default_rng(0)
    extractor = WaveformExtractor(WaveformConfig(sample_rate=16000))
    rows, frames = [], []
    for s in range(6):
        for i in range(4):
            label = "high" if i % 2 else "low"
            signal = tone(440.0 if label == "high" else 220.0, duration_s=float(rng.uniform(0.4, 0.6)),
                          amplitude=0.3)
            frames.append(extractor.extract(signal + rng.normal(0, 0.05, len(signal)).astype(np.float32), 16000))
            rows.append({"utt_id": f"s{s}_{i}", "speaker": f"s{s}", "label": label})
    manifest = pd.DataFrame(rows)
    write_store(root / "waveform", utt_ids=list(manifest["utt_id"]),
                frame_blocks=[(np.concatenate(frames), np.array([len(f) for f in frames]))],
                total_frames=sum(len(f) for f in frames), dim=1, dtype="float16", meta=extractor.meta())
    return root, FeatureStore(root / "waveform"), manifest, save_tiny_encoder(root / "encoder", "wav2vec2")


def config(encoder, **finetune):
    return from_mapping(TrainConfig, {
        "model": "finetune", "normalize": "global", "finetune": {"model": str(encoder), **finetune},
        "sequence": {"epochs": 3, "patience": 3, "batch_size": 8, "hidden": 8, "learning_rate": 0.01,
                     "waveform_crop": 4000, "device": "cpu"}}, section="train")


def test_the_pretrained_encoder_is_fine_tuned_and_chosen_on_validation_speakers(waveforms, tmp_path):
    from transformers import AutoModel

    root, store, manifest, encoder = waveforms
    splits = assign_splits(manifest, SplitConfig(seed=0))
    info, curves = train(store, manifest, splits, config(encoder), tmp_path / "a")
    arch = info.folds[0].chosen_candidate.architecture
    assert arch["kind"] == "finetune" and arch["encoder"]["config"]["model_type"] == "wav2vec2"
    assert curves["validation_uar"].notna().all() and 1 <= info.folds[0].chosen_candidate.best_epoch <= 3
    models, info = load_model(tmp_path / "a")  # rebuilt from model.json's config, no download
    tuned = models[0][1].model.head.encoder.state_dict()
    original = AutoModel.from_pretrained(encoder).state_dict()
    front = [k for k in original if k.startswith("feature_extractor.")]
    assert front and all(torch.equal(tuned[k], original[k]) for k in front)  # loaded, and kept frozen
    assert not torch.equal(tuned["encoder.layers.0.attention.k_proj.weight"],
                           original["encoder.layers.0.attention.k_proj.weight"])  # the transformer learned
    metrics, predictions, _ = evaluate(models, info, store, manifest, splits)
    test_speakers = set(splits.loc[splits["split"] == "test", "speaker"])
    assert set(predictions["speaker"]) == test_speakers and metrics["protocol"]["early_stopping"] == "validation UAR"
    train(store, manifest, splits, config(encoder), tmp_path / "b")  # seeded: the same model again
    pd.testing.assert_frame_equal(predictions, evaluate(*load_model(tmp_path / "b"), store, manifest, splits)[1])


def test_a_random_encoder_fine_tuned_is_marked_not_a_result(waveforms, tmp_path):
    from vocalab.model_info import ModelInfo
    from vocalab.summary import RANDOM_MARK, leaderboard_markdown, set_summary

    root, store, manifest, encoder = waveforms
    splits = assign_splits(manifest, SplitConfig(seed=0))
    settings = config(encoder, init="random")
    train(store, manifest, splits, dataclasses.replace(settings, sequence=dataclasses.replace(settings.sequence,
                                                                                              epochs=1)),
          tmp_path / "r")
    _, predictions, _ = evaluate(*load_model(tmp_path / "r"), store, manifest, splits)
    row = set_summary("waveform", predictions, ModelInfo.read(tmp_path / "r"))
    assert row["random_init"] and f"waveform {RANDOM_MARK}" in leaderboard_markdown(
        {"waveform": {**row, "speaker_overlap": False}})


def test_what_cannot_be_fine_tuned_is_named(waveforms, tmp_path):
    root, store, manifest, encoder = waveforms
    splits = assign_splits(manifest, SplitConfig(seed=0))
    whisper = save_tiny_encoder(tmp_path / "whisper", "whisper")
    with pytest.raises(VocalabError, match="'whisper' model; fine-tuning reads raw samples"):
        train(store, manifest, splits, config(whisper), tmp_path / "w")
    frames = np.zeros((len(manifest) * 5, 3), dtype=np.float32)
    write_store(tmp_path / "frames", utt_ids=list(manifest["utt_id"]),
                frame_blocks=[(frames, np.full(len(manifest), 5))], total_frames=len(frames), dim=3,
                dtype="float32", meta={"feature_set": "toy", "feature_names": ["a", "b", "c"]})
    with pytest.raises(VocalabError, match=r"reads a waveform store.*train.models: \{waveform: finetune\}"):
        train(FeatureStore(tmp_path / "frames"), manifest, splits, config(encoder), tmp_path / "f")
