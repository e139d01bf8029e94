"""The waveform itself as a feature set, for raw-waveform models (``train.model: m5``).

Each utterance's frames are its samples, resampled to ``sample_rate`` (8 or 16 kHz), one
per row (``dim = 1``), stored in float16 by default (2 bytes a sample: 16 KB per second at
8 kHz). The pooled features are the mean and standard deviation of the samples, which only
the frame models have any use for: this set is meant for ``m5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vocalab.audio import mono_signal, resample
from vocalab.features.base import Extractor
from vocalab.features.registry import register_extractor
from vocalab.params import to_dict

SECTION = "waveform"


@dataclass(frozen=True)
class WaveformConfig:
    """``waveform``: the samples raw-waveform models read.

    sample_rate : int      8000 (as M5 was published) or 16000
    frames_dtype : str     float16 (half the disk) or float32
    """

    sample_rate: Literal[8000, 16000] = 8000
    frames_dtype: Literal["float16", "float32"] = "float16"


@register_extractor(section=SECTION, config=WaveformConfig)
class WaveformExtractor(Extractor):
    """``extract(samples, sampling_rate) -> (n', 1)``: the signal at ``sample_rate``, one sample per frame."""

    name = "waveform"

    def __init__(self, config: WaveformConfig) -> None:
        self.config = config
        self.sampling_rate = config.sample_rate
        self.frames_dtype = config.frames_dtype
        self.feature_names = ["sample"]
        self.dim = 1
        self.frames_per_second = float(config.sample_rate)

    def meta(self) -> dict[str, Any]:
        return {"feature_set": self.name, "params": to_dict(self.config), "feature_names": self.feature_names,
                "frames_per_second": self.frames_per_second, "sampling_rate": self.sampling_rate,
                "pretrained": False, "model": None, "definition": "the resampled waveform, one sample per frame"}

    def extract(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        y = resample(mono_signal(samples), orig_sr=sampling_rate, target_sr=self.sampling_rate)
        return y.astype(np.float32).reshape(-1, 1)
