"""A pretrained voice encoder: Resemblyzer's GE2E network, trained on real speech, run offline.

The ``resemblyzer`` wheel (Apache-2.0) ships the network's weights (``pretrained.pt``):
a 3-layer LSTM over 40-band mel power spectra (25 ms windows every 10 ms), a linear
layer and a ReLU, giving a 256-d L2-normalised embedding per 1.6 s partial utterance.
This module runs the same layers with those weights, read by
``torch.load(weights_only=True)`` after their SHA-256 is checked; the package's own
code is not imported (nor its ``webrtcvad`` and deprecated SciPy imports).

As ``VoiceEncoder.embed_utterance`` does, an utterance is cut into partials
of 160 frames, ``rate`` per second, the last one kept if at least ``min_coverage``
of it is audio (the signal zero-padded to fill it); a clip shorter than one partial
is padded with silence to one. The ``voice`` store holds:

* frames: each partial's embedding, ``[shape=(n_partials, 256)]`` (for the sequence heads);
* pooled: the utterance embedding, the L2-normalised mean of the partials (``pooled: functionals``).

Resemblyzer's own preprocessing normalises loudness and cuts pauses with webrtcvad;
here the region the ``vad`` stage found is what is read, and loudness is kept unless
``normalize_volume`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Sequence

import numpy as np

from vocalab.audio import padded_piece
from vocalab.errors import AudioError, WeightsError, load_failure
from vocalab.features.base import read_lengths
from vocalab.features.registry import register_extractor
from vocalab.features.torch_runtime import TorchExtractor, preferred_workers, resolve_device
from vocalab.fetch import checked_file, fetch, packaged_file
from vocalab.params import bounded, check_device_param, to_dict

if TYPE_CHECKING:
    import pandas as pd

SECTION = "embeddings.voice"
SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_S = PARTIAL_FRAMES * HOP / SAMPLE_RATE
EMBEDDING_SIZE = 256
HIDDEN = 256
LAYERS = 3
#: the weights inside the resemblyzer wheel, and their SHA-256 (resemblyzer 0.1.4)
WHEEL_PACKAGE = "resemblyzer"
WHEEL_WEIGHTS = "pretrained.pt"
WHEEL_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
MEL_BLOCK = 30000  # mel frames (10 ms) analysed at a time: 5 minutes
PASS = 32  # partials per forward pass, always this many (padded): an embedding never depends on its batch


@dataclass(frozen=True)
class VoiceConfig:
    """``embeddings.voice``: the Resemblyzer voice encoder.

    weights : str | None        a weights file of the same network; null: the resemblyzer wheel's own
    weights_sha256 : str | None its SHA-256 (null with the wheel's weights: the released file's hash)
    rate : float                partial utterances per second (at least 1 / 1.6 s so that they cover the clip)
    min_coverage : float        the last partial is kept if at least this share of it is audio
    normalize_volume : bool     raise quiet clips to -30 dBFS first, as Resemblyzer's preprocessing does
    device : str                auto (CUDA when present) | cpu | cuda | cuda:N
    frames_dtype : str          storage of the partial embeddings
    """

    weights: str | None = None
    weights_sha256: str | None = None
    rate: float = bounded(1.3, ge=0.625, le=10.0)
    min_coverage: float = bounded(0.75, gt=0.0, le=1.0)
    normalize_volume: bool = False
    device: str = "auto"
    frames_dtype: Literal["float32", "float16"] = "float32"

    def __post_init__(self) -> None:
        check_device_param(self.device, SECTION)


def partial_slices(n_samples: int, *, rate: float, min_coverage: float) -> list[tuple[int, int]]:
    """Mel-frame ranges of the partial utterances of a signal of ``n_samples`` (Resemblyzer's rule)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    frame_step = max(1, int(np.round((SAMPLE_RATE / rate) / HOP)))
    slices = [(i, i + PARTIAL_FRAMES) for i in range(0, max(1, n_frames - PARTIAL_FRAMES + frame_step + 1),
                                                       frame_step)]
    start = slices[-1][0] * HOP
    coverage = (n_samples - start) / (PARTIAL_FRAMES * HOP)
    if coverage < min_coverage and len(slices) > 1:
        slices = slices[:-1]
    return slices


def mel_power(samples: np.ndarray, length: int | None = None) -> np.ndarray:
    """40-band mel power spectrum, ``[shape=(t, 40)]``, as the encoder was trained on (no log), of ``samples``
    followed by zeros up to ``length`` samples.

    A recording longer than :data:`MEL_BLOCK` frames is analysed that many frames at a time
    (the same frames, from zero-padded pieces), so memory does not grow with its length.
    """
    import librosa

    def mel(piece: np.ndarray, center: bool) -> np.ndarray:
        return librosa.feature.melspectrogram(y=piece, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                              center=center, pad_mode="constant").astype(np.float32).T

    length = len(samples) if length is None else max(length, len(samples))
    n_frames = 1 + length // HOP
    if n_frames <= MEL_BLOCK:
        return mel(np.pad(samples, (0, length - len(samples))) if length > len(samples) else samples, True)
    return np.concatenate([mel(padded_piece(samples, N_FFT // 2, start * HOP,
                                            (min(n_frames, start + MEL_BLOCK) - 1) * HOP + N_FFT), False)
                           for start in range(0, n_frames, MEL_BLOCK)])


def normalized_volume(samples: np.ndarray, target_dbfs: float = -30.0) -> np.ndarray:
    """``samples`` raised (never lowered) to an RMS of ``target_dbfs``, as Resemblyzer's preprocessing does."""
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) if len(samples) else 0.0
    if rms == 0.0:
        return samples
    gain_db = target_dbfs - 20 * np.log10(rms)
    return samples * np.float32(10 ** (gain_db / 20)) if gain_db > 0 else samples


def _encoder_module() -> Any:
    import torch
    from torch import nn

    class VoiceEncoderNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
            self.linear = nn.Linear(HIDDEN, EMBEDDING_SIZE)

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            """Unnormalised embeddings ``[shape=(b, 256)]`` of ``[shape=(b, 160, 40)]`` partials."""
            _, (hidden, _) = self.lstm(mels)
            return torch.relu(self.linear(hidden[-1]))

    return VoiceEncoderNet


def read_weights(path: Path, key: str, wanted: set[str]) -> dict[str, Any]:
    """The ``wanted`` tensors of a Resemblyzer checkpoint, loaded without running code from it."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure to read it is the same bad file
        raise WeightsError(f"'{key}': {path} is not a weights file that loads safely ({load_failure(err)}).") from err
    state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not wanted <= set(state):
        raise WeightsError(f"'{key}': {path} holds no Resemblyzer voice encoder (missing "
                           f"{sorted(wanted - set(state or {}))[:3]}). Give its pretrained.pt, or null.")
    return {name: state[name] for name in wanted}


@register_extractor(section=SECTION, config=VoiceConfig)
class VoiceExtractor(TorchExtractor):
    """Resemblyzer's voice encoder over the speech region of each utterance."""

    name = "voice"
    # a worker takes seconds to start (torch and the model): worth it for this much audio (benchmarks/RESULTS.md)
    audio_s_per_worker: ClassVar[float] = 600.0
    sampling_rate = SAMPLE_RATE
    dim = EMBEDDING_SIZE
    reads_speech_region: ClassVar[bool] = True

    def __init__(self, config: VoiceConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device, SECTION)
        self.frames_dtype = config.frames_dtype
        self.feature_names = [f"voice_{i:03d}" for i in range(EMBEDDING_SIZE)]
        self.preferred_workers = preferred_workers(self.device)
        self.weights_info: dict[str, Any] = {}
        self._model: Any = None
        self.load()

    def _load(self) -> None:
        key = f"{SECTION}.weights"
        if self.config.weights is None:
            sha256 = self.config.weights_sha256 or WHEEL_SHA256
            path = checked_file(packaged_file(WHEEL_PACKAGE, WHEEL_WEIGHTS), sha256)
            source = f"{WHEEL_PACKAGE} wheel"
        else:
            fetched = fetch(self.config.weights, sha256=self.config.weights_sha256, key=key)
            path, sha256, source = fetched.path, fetched.sha256, self.config.weights
        model = _encoder_module()()
        model.load_state_dict(read_weights(path, key, set(model.state_dict())))
        self.weights_info = {"source": source, "file": path.name, "sha256": sha256}
        self._model = model.eval().to(self.device)

    def meta(self) -> dict[str, Any]:
        import torch

        return {
            "feature_set": "voice",
            "params": to_dict(self.config),
            "model": "GE2E voice encoder (Resemblyzer): 3-layer LSTM over 40-band mel power",
            "pretrained": True,
            "weights": self.weights_info,
            "sampling_rate": SAMPLE_RATE,
            "partial_s": PARTIAL_S,
            "feature_names": self.feature_names,
            "frames_per_second": self.config.rate,
            "pooled": "functionals",
            "pooled_names": [f"{name}_utterance" for name in self.feature_names],
            "device": self.device.type,
            "torch": torch.__version__.split("+")[0],
        }

    def describe(self, manifest: pd.DataFrame) -> str:
        short = len(short_utt_ids(manifest))
        return (f"Resemblyzer voice encoder ({self.weights_info['source']}), {self.device.type}; "
                f"{short} utterance(s) under one {PARTIAL_S} s partial, padded with silence to one")

    def store_meta(self, manifest: pd.DataFrame) -> dict[str, dict[str, Any]]:
        """The utterances shorter than one partial (padded with silence to one)."""
        return {"voice": {"short_utterances": {"policy": "padded to one partial", "min_duration_s": PARTIAL_S,
                                               "utt_ids": short_utt_ids(manifest)}}}

    def extract(self, samples: np.ndarray, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
        from vocalab.audio import mono_signal, resample

        samples = resample(mono_signal(samples), orig_sr=sampling_rate, target_sr=SAMPLE_RATE)
        return self.extract_batch([samples])[0]

    def extract_batch(self, signals: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per 16 kHz signal: ``(partial embeddings [shape=(n, 256)], utterance embedding [shape=(256,)])``."""
        partials, counts = [], []
        for samples in signals:
            samples = np.asarray(samples, dtype=np.float32)
            if self.config.normalize_volume:
                samples = normalized_volume(samples)
            slices = partial_slices(len(samples), rate=self.config.rate, min_coverage=self.config.min_coverage)
            needed = slices[-1][1] * HOP
            mel = mel_power(samples, length=max(needed, len(samples)))
            partials.extend(mel[a:b] for a, b in slices)
            counts.append(len(slices))
        embeds = self.embed(partials)
        results = []
        for piece in np.split(embeds, np.cumsum(counts)[:-1]):
            norms = np.linalg.norm(piece, axis=1, keepdims=True)
            if not (norms > 0).all():
                raise AudioError("the voice encoder gives a zero embedding (no signal it responds to, e.g. "
                                 "digital silence); check the file or leave it out.")
            piece = piece / norms
            mean = piece.mean(axis=0)
            results.append((piece.astype(np.float32), (mean / np.linalg.norm(mean)).astype(np.float32)))
        return results

    def embed(self, mels: Sequence[np.ndarray]) -> np.ndarray:
        """Unnormalised embeddings of ``n`` partials ``[shape=(160, 40)]``, :data:`PASS` at a time."""
        import torch

        out = np.zeros((len(mels), EMBEDDING_SIZE), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(mels), PASS):
                chunk = mels[start:start + PASS]
                batch = np.zeros((PASS, PARTIAL_FRAMES, N_MELS), dtype=np.float32)
                for row, partial in enumerate(chunk):
                    batch[row] = partial
                result = self._model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()
                out[start:start + len(chunk)] = result[:len(chunk)]
        return out


def short_utt_ids(manifest: pd.DataFrame) -> list[str]:
    """utt_ids whose audio read (their speech region where the manifest has one) is under one partial."""
    return [u for u, d in zip(manifest["utt_id"].astype(str), read_lengths(manifest)) if d < PARTIAL_S]
