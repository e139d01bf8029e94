"""The Resemblyzer voice encoder: the wheel's weights, its own numbers, speech regions through the engine."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from tests.conftest import speech_like, write_wav
from vocalab.audio import audio_hash, cut_region
from vocalab.errors import AudioError, FeatureStoreError, FetchError, WeightsError
from vocalab.features import voice
from vocalab.features.extraction import extract_manifest
from vocalab.features.store import FeatureStore

SR = voice.SAMPLE_RATE


@pytest.fixture(scope="module")
def extractor():
    return voice.VoiceExtractor(voice.VoiceConfig(device="cpu"))


def signals() -> list[np.ndarray]:
    long = np.concatenate([speech_like(1, duration_s=2.0), speech_like(2, duration_s=2.3)])
    return [speech_like(0, duration_s=2.0), speech_like(3, duration_s=0.7), long]


def test_embeddings_are_those_of_resemblyzers_own_voice_encoder(extractor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resemblyzer imports scipy.ndimage.morphology, deprecated
        from resemblyzer import VoiceEncoder
    reference = VoiceEncoder(device="cpu", verbose=False)
    for samples, (partials, utterance) in zip(signals(), extractor.extract_batch(signals())):
        embed, their_partials, _ = reference.embed_utterance(samples, return_partials=True)
        np.testing.assert_allclose(utterance, embed, atol=1e-6)
        np.testing.assert_allclose(partials, their_partials, atol=1e-6)
    assert [len(p) for p, _ in extractor.extract_batch(signals())] == [2, 1, 5]  # a 0.7 s clip: one partial


def test_an_embedding_does_not_depend_on_the_clips_batched_with_it(extractor):
    together = extractor.extract_batch(signals())
    alone = [extractor.extract_batch([s])[0] for s in signals()]
    for (p1, u1), (p2, u2) in zip(together, alone):
        assert p1.tobytes() == p2.tobytes() and u1.tobytes() == u2.tobytes()


def test_digital_silence_gives_a_unit_embedding_and_a_zero_one_is_an_error(extractor, monkeypatch):
    (partials, utterance), (_, speech) = extractor.extract_batch([np.zeros(SR, np.float32), signals()[0]])
    assert np.isclose(np.linalg.norm(utterance), 1.0) and np.allclose(np.linalg.norm(partials, axis=1), 1.0)
    assert not np.allclose(utterance, speech)
    monkeypatch.setattr(extractor, "embed", lambda mels: np.zeros((len(mels), voice.EMBEDDING_SIZE), np.float32))
    with pytest.raises(AudioError, match="zero embedding"):  # never divided into NaN, never stored as zeros
        extractor.extract_batch([np.zeros(SR, np.float32)])


def test_the_wheel_weights_are_hash_checked_and_loaded_without_running_code(tmp_path):
    with pytest.raises(WeightsError, match=r"pretrained\.pt' has SHA-256 .*expected 0{64}.*Reinstall"):
        voice.VoiceExtractor(voice.VoiceConfig(weights_sha256="0" * 64, device="cpu"))
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    bad = tmp_path / "encoder.pt"
    torch.save({"model_state": Payload()}, bad)
    with pytest.raises(WeightsError, match=r"'embeddings\.voice\.weights': .*encoder\.pt is not a weights file that "
                                           r"loads safely.*could run code") as caught:
        voice.VoiceExtractor(voice.VoiceConfig(weights=str(bad), device="cpu"))
    assert "weights_only=False" not in str(caught.value)
    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(3)}}, bad)
    with pytest.raises(WeightsError, match=r"holds no Resemblyzer voice encoder"):
        voice.VoiceExtractor(voice.VoiceConfig(weights=str(bad), device="cpu"))
    with pytest.raises(FetchError, match="no such file"):
        voice.VoiceExtractor(voice.VoiceConfig(weights=str(tmp_path / "none.pt"), device="cpu"))


def test_the_engine_reads_each_utterances_speech_region(extractor, tmp_path):
    audio = [write_wav(tmp_path / f"u{i}.wav", s, SR) for i, s in enumerate(signals())]
    manifest = pd.DataFrame({"utt_id": ["u0", "u1", "u2"], "path": [str(p) for p in audio],
                             "audio_hash": [audio_hash(p) for p in audio],
                             "duration_s": [len(s) / SR for s in signals()],
                             "sample_rate": SR, "speech_start_s": [0.2, 0.0, 1.0],
                             "speech_end_s": [1.9, 0.7, 4.3]})
    cache = tmp_path / "cache"
    report = extract_manifest(manifest, extractor, tmp_path / "voice", cache_root=cache, workers=1, progress=False)
    assert report.extracted == 3
    store = FeatureStore(tmp_path / "voice")
    meta = json.loads((tmp_path / "voice/meta.json").read_text())
    assert meta["reads_speech_region"] is True and meta["pretrained"] is True
    assert meta["weights"]["sha256"] == voice.WHEEL_SHA256 and meta["weights"]["source"] == "resemblyzer wheel"
    from vocalab.audio import load_audio

    for k, (start, end) in enumerate([(0.2, 1.9), (0.0, 0.7), (1.0, 4.3)]):
        decoded = cut_region(load_audio(audio[k], sampling_rate=SR)[0], SR, start, end)
        _, utterance = extractor.extract_batch([decoded])[0]
        np.testing.assert_array_equal(store.pooled[k], utterance)
    assert extractor.store_meta(manifest)["voice"]["short_utterances"]["utt_ids"] == ["u1"]

    # the same regions come from the cache; a changed one is extracted again, and only it
    again = extract_manifest(manifest, extractor, tmp_path / "again", cache_root=cache, workers=1, progress=False)
    assert again.extracted == 0
    moved = manifest.assign(speech_start_s=[0.3, 0.0, 1.0])
    assert extract_manifest(moved, extractor, tmp_path / "moved", cache_root=cache, workers=1,
                            progress=False).extracted == 1
    with pytest.raises(FeatureStoreError, match=r"voice reads each utterance's speech region.*dvc repro vad"):
        extract_manifest(manifest.drop(columns=["speech_start_s"]), extractor, tmp_path / "x", cache_root=cache,
                         workers=1, progress=False)


def test_a_long_recording_is_analysed_a_block_of_frames_at_a_time(monkeypatch):
    """Bounded memory: the mel frames of pieces, as those of the whole file up to float32 rounding."""
    samples = np.concatenate([speech_like(seed, duration_s=2.0) for seed in range(4)])
    whole = voice.mel_power(samples)
    monkeypatch.setattr(voice, "MEL_BLOCK", 150)
    blocks = voice.mel_power(samples)
    assert blocks.shape == whole.shape == (1 + len(samples) // voice.HOP, voice.N_MELS)
    np.testing.assert_allclose(blocks, whole, rtol=1e-5, atol=1e-6 * whole.max())
