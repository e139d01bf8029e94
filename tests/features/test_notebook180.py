"""The 180-feature vector equals the notebook's librosa code."""

import numpy as np

from tests.conftest import speech_like
from vocalab.features.notebook180 import Notebook180Config, Notebook180Extractor


def notebook_features(y, sample_rate):
    """The classic notebook's extract_feature, as written there (mfcc, chroma and mel, each a time mean)."""
    import librosa

    stft = np.abs(librosa.stft(y))
    mfccs = np.mean(librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=40).T, axis=0)
    chroma = np.mean(librosa.feature.chroma_stft(S=stft, sr=sample_rate).T, axis=0)
    mel = np.mean(librosa.feature.melspectrogram(y=y, sr=sample_rate).T, axis=0)
    return np.hstack([mfccs, chroma, mel])


def test_the_pooled_vector_is_the_notebooks():
    import librosa

    extractor = Notebook180Extractor(Notebook180Config())
    signal = speech_like(3, sampling_rate=16000, duration_s=1.7)
    frames, pooled = extractor.extract(signal, 16000)
    y = librosa.resample(signal, orig_sr=16000, target_sr=22050, res_type="soxr_hq")
    assert pooled.shape == (180,) and frames.shape[1] == 180 and extractor.dim == 180
    np.testing.assert_allclose(pooled, notebook_features(y, 22050), rtol=1e-5, atol=1e-6)
    assert extractor.feature_names[39:41] == ["mfcc_39", "chroma_0"] and extractor.feature_names[-1] == "mel_127"
    meta = extractor.meta()
    assert meta["pooled"] == "functionals" and meta["pooled_names"] == extractor.feature_names
