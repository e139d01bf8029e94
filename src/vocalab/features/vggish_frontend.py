"""The VGGish input: log-mel examples exactly as the original AudioSet code computes them.

From 16 kHz mono samples: the magnitude of the STFT with a 25 ms periodic Hann
window and a 10 ms hop (FFT length the next power of two, 512), 64 mel bands over
125-7500 Hz with triangles in the HTK mel scale (the DC bin excluded),
``log(mel + 0.01)``, then non-overlapping examples of 96 frames (0.96 s). Frames
are taken without padding, so a signal gives ``1 + (n - 400) // 160`` frames and
the audio after the last whole example is not embedded (as in the original).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from vocalab.windows import (
    VGGISH_EXAMPLE_FRAMES as EXAMPLE_FRAMES,
    VGGISH_EXAMPLE_S as EXAMPLE_S,
    VGGISH_HOP_LENGTH as HOP_LENGTH,
    VGGISH_HOP_S as HOP_S,
    VGGISH_MIN_CLIP_S as MIN_CLIP_S,
    VGGISH_MIN_EXAMPLE_SAMPLES as MIN_EXAMPLE_SAMPLES,
    VGGISH_SAMPLE_RATE as SAMPLE_RATE,
    VGGISH_WINDOW_LENGTH as WINDOW_LENGTH,
    VGGISH_WINDOW_S as WINDOW_S,
)

NUM_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
FFT_LENGTH = 2 ** int(np.ceil(np.log2(WINDOW_LENGTH)))  # 512

ShortClipPolicy = Literal["pad", "repeat", "drop"]


def htk_hz_to_mel(frequencies_hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, ``1127 ln(1 + f / 700)``, as in the original code."""
    return 1127.0 * np.log1p(np.asarray(frequencies_hz, dtype=np.float64) / 700.0)


def periodic_hann(window_length: int) -> np.ndarray:
    """``0.5 - 0.5 cos(2 pi k / N)``: the periodic (not the symmetric) Hann window."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi / window_length * np.arange(window_length))


def num_frames(num_samples: int) -> int:
    """STFT frames of a signal of ``num_samples`` samples (no padding)."""
    return 0 if num_samples < WINDOW_LENGTH else 1 + (num_samples - WINDOW_LENGTH) // HOP_LENGTH


def num_examples(num_samples: int) -> int:
    """Whole 0.96 s examples in a signal of ``num_samples`` samples."""
    return num_frames(num_samples) // EXAMPLE_FRAMES


def mel_matrix(num_spectrogram_bins: int = FFT_LENGTH // 2 + 1, *, sampling_rate: int = SAMPLE_RATE,
               num_bands: int = NUM_BANDS, lower_hz: float = MEL_MIN_HZ, upper_hz: float = MEL_MAX_HZ) -> np.ndarray:
    """Weights that map STFT magnitudes to mel bands.

    Triangles of height 1, evenly spaced and linear in HTK mel; the DC bin gets
    no weight.

    Returns
    -------
    np.ndarray [shape=(num_spectrogram_bins, num_bands), dtype=float64]
    """
    nyquist = sampling_rate / 2.0
    if not 0.0 <= lower_hz < upper_hz <= nyquist:
        raise ValueError(f"mel band edges must satisfy 0 <= {lower_hz} < {upper_hz} <= {nyquist} Hz")
    bins_mel = htk_hz_to_mel(np.linspace(0.0, nyquist, num_spectrogram_bins))
    edges = np.linspace(htk_hz_to_mel(lower_hz), htk_hz_to_mel(upper_hz), num_bands + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


_MEL = mel_matrix()
_WINDOW = periodic_hann(WINDOW_LENGTH)


def stft_magnitude(samples: np.ndarray) -> np.ndarray:
    """``|rfft(frame * window, 512)|`` of every 25 ms frame.

    Returns
    -------
    np.ndarray [shape=(num_frames(n), 257), dtype=float64]
    """
    samples = np.asarray(samples, dtype=np.float64)
    if len(samples) < WINDOW_LENGTH:
        return np.zeros((0, FFT_LENGTH // 2 + 1))
    frames = np.lib.stride_tricks.sliding_window_view(samples, WINDOW_LENGTH)[::HOP_LENGTH]
    return np.abs(np.fft.rfft(frames * _WINDOW, FFT_LENGTH))


def log_mel(samples: np.ndarray) -> np.ndarray:
    """``log(mel + 0.01)`` frames of a 16 kHz signal.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)]

    Returns
    -------
    np.ndarray [shape=(num_frames(n), 64), dtype=float32]
    """
    return np.log(stft_magnitude(samples) @ _MEL + LOG_OFFSET).astype(np.float32)


def examples(log_mel_frames: np.ndarray) -> np.ndarray:
    """Non-overlapping 96-frame examples; trailing frames that do not fill one are left out.

    Returns
    -------
    np.ndarray [shape=(t // 96, 96, 64)]
    """
    n = len(log_mel_frames) // EXAMPLE_FRAMES
    return log_mel_frames[: n * EXAMPLE_FRAMES].reshape(n, EXAMPLE_FRAMES, log_mel_frames.shape[1])


def fit_short_clip(samples: np.ndarray, policy: ShortClipPolicy) -> np.ndarray | None:
    """A signal long enough for one example, as ``policy`` says; ``None`` for ``drop``.

    ``pad`` appends silence, ``repeat`` tiles the clip; signals of 0.975 s or more
    come back unchanged.
    """
    n = len(samples)
    if n >= MIN_EXAMPLE_SAMPLES:
        return samples
    if policy == "drop":
        return None
    if policy == "pad":
        return np.pad(samples, (0, MIN_EXAMPLE_SAMPLES - n))
    if policy == "repeat":
        return np.tile(samples, -(-MIN_EXAMPLE_SAMPLES // n))[:MIN_EXAMPLE_SAMPLES]
    raise ValueError(f"unknown short-clip policy {policy!r}")
