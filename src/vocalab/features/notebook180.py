"""The 180-feature vector of the classic speech-emotion notebook: 40 MFCC, 12 chroma, 128 mel bands, time means.

Per clip, at librosa's default 22,050 Hz with its default STFT (2,048-sample frames, hop 512):

- ``librosa.feature.mfcc(y, sr, n_mfcc=40)``;
- ``librosa.feature.chroma_stft(S=|STFT(y)|, sr)`` (the notebook passes the magnitude spectrum);
- ``librosa.feature.melspectrogram(y, sr)`` (128 bands, power, not in dB);

each averaged over time: the pooled features (``pooled: functionals``, named ``mfcc_i``,
``chroma_i``, ``mel_i``). The frames are the same 180 values per frame, for the sequence heads.
librosa itself computes them, so the numbers are the notebook's (tested against its code).
The notebook's model, a 1-D CNN over this vector, is ``train.model: vector_cnn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vocalab.audio import mono_signal, resample
from vocalab.features.base import Extractor
from vocalab.features.registry import register_extractor
from vocalab.params import bounded, to_dict

SECTION = "notebook180"


@dataclass(frozen=True)
class Notebook180Config:
    """``notebook180``: the 180-feature vector's analysis.

    sample_rate : int > 0    rate audio is resampled to (librosa.load's default, 22,050 Hz)
    n_mfcc, n_chroma, n_mels : int > 0   the three blocks (40 + 12 + 128 = 180)
    n_fft, hop_length : int > 0          the STFT (librosa's defaults)
    """

    sample_rate: int = bounded(22050, ge=8000, le=96000)
    n_mfcc: int = bounded(40, ge=1, le=128)
    n_chroma: int = bounded(12, ge=1, le=48)
    n_mels: int = bounded(128, ge=1, le=512)
    n_fft: int = bounded(2048, ge=64, le=65536)
    hop_length: int = bounded(512, ge=16, le=65536)


@register_extractor(section=SECTION, config=Notebook180Config)
class Notebook180Extractor(Extractor):
    """``extract(samples, sampling_rate) -> (frames [shape=(t, 180)], means [shape=(180,)])``."""

    name = "notebook180"
    frames_dtype = "float32"

    def __init__(self, config: Notebook180Config) -> None:
        self.config = config
        self.sampling_rate = config.sample_rate
        self.feature_names = ([f"mfcc_{i}" for i in range(config.n_mfcc)]
                              + [f"chroma_{i}" for i in range(config.n_chroma)]
                              + [f"mel_{i}" for i in range(config.n_mels)])
        self.dim = len(self.feature_names)
        self.frames_per_second = config.sample_rate / config.hop_length

    def meta(self) -> dict[str, Any]:
        import librosa

        return {
            "feature_set": self.name, "params": to_dict(self.config), "feature_names": self.feature_names,
            "pooled": "functionals", "pooled_names": self.feature_names,
            "frames_per_second": self.frames_per_second, "sampling_rate": self.sampling_rate,
            "pretrained": False, "model": None,
            "definition": f"librosa {librosa.__version__}: mfcc, chroma_stft(S=|stft|), melspectrogram; time means",
        }

    def frames(self, y: np.ndarray) -> np.ndarray:
        """The three blocks per frame, ``[shape=(t, 180)]``, as librosa computes them for ``y`` at ``sample_rate``."""
        import librosa

        c, sr = self.config, self.config.sample_rate
        stft = np.abs(librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length))
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=c.n_mfcc, n_fft=c.n_fft, hop_length=c.hop_length)
        chroma = librosa.feature.chroma_stft(S=stft, sr=sr, n_chroma=c.n_chroma, n_fft=c.n_fft,
                                             hop_length=c.hop_length)
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=c.n_mels, n_fft=c.n_fft, hop_length=c.hop_length)
        return np.concatenate([mfcc, chroma, mel], axis=0).T

    def extract(self, samples: np.ndarray, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
        y = resample(mono_signal(samples), orig_sr=sampling_rate, target_sr=self.sampling_rate)
        frames = self.frames(y)
        return frames.astype(np.float32), frames.astype(np.float64).mean(axis=0)
