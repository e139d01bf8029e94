"""embeddings.encoder: every family loaded offline through the real path, from tiny models saved in a temp dir."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import speech_like
from vocalab.errors import WeightsError
from vocalab.features.encoder import EncoderConfig, EncoderExtractor, WhisperEncoderExtractor
from vocalab.params import from_mapping
from vocalab.testing.encoders_tiny import WHISPER_WINDOW_S, save_tiny_encoder

WAV2VEC2_LIKE = ("hubert", "wavlm", "data2vec-audio")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family -> a saved tiny model of it; also 'head': a wav2vec 2.0 saved with a classification head."""
    root = tmp_path_factory.mktemp("encoders")
    models = {family: save_tiny_encoder(root / family, family) for family in WAV2VEC2_LIKE + ("whisper",)}
    models["head"] = save_tiny_encoder(root / "head", "wav2vec2", head=True)
    return models


def make(path, **params):
    return EncoderExtractor(from_mapping(EncoderConfig, {"model": str(path), "init": "pretrained", "device": "cpu",
                                                         **params}, section="embeddings.encoder"))


def reference(path, samples, layer):
    """What the transformers model itself gives for one utterance (normalised as its feature extractor says)."""
    import torch
    from transformers import AutoFeatureExtractor, AutoModel

    inputs = AutoFeatureExtractor.from_pretrained(path)(samples, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        out = AutoModel.from_pretrained(path)(inputs["input_values"], output_hidden_states=True)
    return out.hidden_states[layer][0].numpy()


@pytest.mark.parametrize("family", WAV2VEC2_LIKE)
def test_each_family_gives_its_models_own_hidden_states_and_batches_exactly(tiny, family):
    extractor = make(tiny[family], layers=[1, 2])
    a, b = speech_like(1, duration_s=1.3), speech_like(2, duration_s=2.1)
    alone = [extractor.extract(s, 16000) for s in (a, b)]
    assert alone[0].shape[1] == 64 and extractor.family == family
    np.testing.assert_allclose(alone[1][:, :32], reference(tiny[family], b, 1), atol=2e-4)
    np.testing.assert_allclose(alone[1][:, 32:], reference(tiny[family], b, 2), atol=2e-4)
    extractor.batch_s = 10.0  # both in one padded pass: what each gives alone
    for got, want in zip(extractor.extract_batch([a, b]), alone):
        np.testing.assert_allclose(got, want, atol=2e-4)
    meta = extractor.meta()
    assert meta["family"] == family and meta["model"] == str(tiny[family]) and meta["layers"] == [1, 2]
    assert meta["model_kind"] == "directory" and meta["pretrained"] is True


def test_a_checkpoint_with_a_classification_head_gives_its_encoders_states(tiny):
    import torch
    from transformers import AutoModelForAudioClassification

    samples = speech_like(3, duration_s=1.5)
    got = make(tiny["head"], layers="last").extract(samples, 16000)
    full = AutoModelForAudioClassification.from_pretrained(tiny["head"]).eval()
    x = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)
    with torch.inference_mode():
        want = full.wav2vec2(torch.from_numpy(x[None].astype(np.float32))).last_hidden_state[0].numpy()
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_whisper_windows_cover_the_audio_and_batch_exactly(tiny):
    import torch
    from transformers import WhisperFeatureExtractor, WhisperModel

    extractor = make(tiny["whisper"], layers="last")
    assert isinstance(extractor, WhisperEncoderExtractor) and extractor.frames_per_second == 50.0
    long = speech_like(4, duration_s=2.5 * WHISPER_WINDOW_S)  # three windows, the last one half full
    frames = extractor.extract(long, 16000)
    assert frames.shape == (-(-len(long) // 320), 32)
    # the first window is what Whisper's own encoder gives for it
    window = WHISPER_WINDOW_S * 16000
    mel = WhisperFeatureExtractor.from_pretrained(tiny["whisper"])(long[:window], sampling_rate=16000,
                                                                    return_tensors="pt")["input_features"]
    with torch.inference_mode():
        want = WhisperModel.from_pretrained(tiny["whisper"]).encoder(mel).last_hidden_state[0].numpy()
    np.testing.assert_allclose(frames[:150], want, atol=2e-4)
    extractor.batch_s = 100.0
    short = speech_like(5, duration_s=0.7)
    together = extractor.extract_batch([long, short])
    np.testing.assert_allclose(together[0], frames, atol=2e-4)
    assert together[1].shape == (35, 32)
    meta = extractor.meta()
    assert meta["family"] == "whisper" and meta["architecture"]["encoder_only"] is True
    assert meta["architecture"]["window_s"] == WHISPER_WINDOW_S


def test_whisper_workers_rebuild_it_from_a_pickle(tiny):
    import pickle

    extractor = make(tiny["whisper"], layers=[1])
    copy = pickle.loads(pickle.dumps(extractor))
    assert type(copy) is WhisperEncoderExtractor
    samples = speech_like(6, duration_s=1.0)
    np.testing.assert_array_equal(copy.extract(samples, 16000), extractor.extract(samples, 16000))


def test_a_family_that_is_not_the_checkpoints_is_named(tiny):
    with pytest.raises(WeightsError, match=r"family' = 'hubert', but .* is a 'wavlm' model"):
        make(tiny["wavlm"], family="hubert")
    with pytest.raises(WeightsError, match=r"family' = 'wavlm', but .* is a 'whisper' model"):
        make(tiny["whisper"], family="wavlm")


def test_a_default_architecture_is_built_offline_with_random_weights(monkeypatch):
    """init: random with a known base hub id needs no download: its family's config defaults."""
    from vocalab.features.wav2vec2_source import load_hf_config, resolve_source

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config, origin = load_hf_config(resolve_source("microsoft/wavlm-base-plus"), init="random")
    assert config.model_type == "wavlm" and config.hidden_size == 768 and "WavLMConfig() defaults" in origin
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        load_hf_config(resolve_source("microsoft/wavlm-large"), init="random")
