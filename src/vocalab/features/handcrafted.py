"""Handcrafted frame features: MFCC + RMS energy + zero-crossing rate.

The definitions are librosa's (``librosa.feature.mfcc``, ``rms``,
``zero_crossing_rate`` with ``center=True``), so numbers agree with the usual
notebook code, but everything is computed from one framing of the signal with
the mel filterbank, DCT matrix and window built once per extractor instead of
once per call. Frames are processed in blocks so memory stays bounded on long files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vocalab.audio import mono_signal, padded_piece, resample
from vocalab.errors import ParamsError
from vocalab.features.mel import mel_filterbank
from vocalab.features.base import Extractor
from vocalab.features.registry import register_extractor
from vocalab.params import bounded, to_dict

_AMIN = 1e-10  # power floor before log, as librosa.power_to_db
_TOP_DB = 80.0  # dynamic range kept below each utterance's peak, as librosa.power_to_db
_ZC_THRESHOLD = 1e-10  # |x| below this counts as zero, as librosa.zero_crossings
_BLOCK_FRAMES = 1024
#: the mel spectrogram is kept for the MFCC pass up to this size, and computed again beyond it
_MEL_KEPT_BYTES = 16 << 20


@dataclass(frozen=True)
class HandcraftedConfig:
    """``features``: the handcrafted feature parameters.

    sample_rate : int > 0    rate audio is resampled to before analysis (Hz)
    n_mfcc : int > 0         number of MFCCs kept (<= n_mels)
    n_mels : int > 0         mel bands the MFCCs are computed from
    n_fft : int > 0          FFT size and analysis frame length (samples)
    hop_length : int > 0     step between frames (samples), <= n_fft
    fmin, fmax : float       mel band edges (Hz); fmax null means sample_rate / 2
    """

    sample_rate: int = bounded(16000, ge=4000, le=192000)
    n_mfcc: int = bounded(13, ge=1, le=128)
    n_mels: int = bounded(128, ge=1, le=512)
    n_fft: int = bounded(2048, ge=16, le=65536)
    hop_length: int = bounded(512, ge=1, le=65536)
    fmin: float = bounded(0.0, ge=0.0)
    fmax: float | None = bounded(None, gt=0.0)

    def check(self, section: str) -> None:
        if self.n_mfcc > self.n_mels:
            raise ParamsError(
                f"params key '{section}.n_mfcc' = {self.n_mfcc} exceeds '{section}.n_mels' = {self.n_mels}: "
                f"there cannot be more cepstral coefficients than mel bands. Lower n_mfcc or raise n_mels."
            )
        if self.hop_length > self.n_fft:
            raise ParamsError(
                f"params key '{section}.hop_length' = {self.hop_length} is larger than "
                f"'{section}.n_fft' = {self.n_fft}, so samples between frames would be skipped. "
                f"Use hop_length <= n_fft."
            )
        nyquist = self.sample_rate / 2
        fmax = nyquist if self.fmax is None else self.fmax
        if fmax > nyquist:
            raise ParamsError(
                f"params key '{section}.fmax' = {self.fmax} exceeds the Nyquist frequency "
                f"({nyquist:g} Hz for sample_rate={self.sample_rate}). Reduce fmax or raise sample_rate."
            )
        if self.fmin >= fmax:
            raise ParamsError(
                f"params key '{section}.fmin' = {self.fmin} must be below fmax ({fmax:g} Hz)."
            )
        weights = mel_filterbank(sampling_rate=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels,
                                 fmin=self.fmin, fmax=self.fmax)
        empty = int((weights.max(axis=1) == 0).sum())
        if empty:  # a band narrower than the FFT's bin spacing catches no bin: a feature that is always silent
            raise ParamsError(
                f"params keys '{section}.n_fft' = {self.n_fft} and '{section}.n_mels' = {self.n_mels}: {empty} of "
                f"the {self.n_mels} mel filters fall between FFT bins ({self.sample_rate / self.n_fft:g} Hz apart) "
                f"and would be all zeros. Raise n_fft or lower n_mels."
            )


def frame_energies(y: np.ndarray, pad: int, n_frames: int, n_fft: int, hop: int) -> np.ndarray:
    """Sum of squares of each frame ``padded[k * hop : k * hop + n_fft]`` of ``padded = np.pad(y, pad)``, in float64.

    A frame spans ``n_fft / g`` blocks of ``g = gcd(n_fft, hop)`` samples and starts every
    ``hop / g`` blocks, so one running sum over the block energies gives every frame by a
    difference: ``g`` times less sequential work than a running sum over the samples. The block
    energies are summed a bounded piece of the signal at a time.
    """
    g = math.gcd(n_fft, hop)
    step, span = hop // g, n_fft // g
    n_blocks = (n_frames - 1) * step + span  # the last frame ends inside ``padded``
    blocks = np.empty(n_blocks, dtype=np.float64)
    per_piece = max(1, (1 << 18) // g)
    for first in range(0, n_blocks, per_piece):
        last = min(n_blocks, first + per_piece)
        piece = padded_piece(y, pad, first * g, last * g)
        blocks[first:last] = np.square(piece.reshape(last - first, g), dtype=np.float64).sum(axis=1)
    energy = np.concatenate([[0.0], np.cumsum(blocks)])
    starts = np.arange(n_frames) * step
    return energy[starts + span] - energy[starts]


@register_extractor(section="features", config=HandcraftedConfig)
class HandcraftedExtractor(Extractor):
    """``extract(samples, sampling_rate) -> (t, n_mfcc + 2)``: MFCCs, then RMS, then ZCR.

    Picklable (it travels to worker processes). Its tables are built on the first
    ``extract`` (a run whose files are all in the cache never imports scipy).
    """

    name = "handcrafted"
    frames_dtype = "float32"

    def __init__(self, config: HandcraftedConfig) -> None:
        self.config = config
        self.sampling_rate = config.sample_rate
        self._tables: tuple[np.ndarray, Any, np.ndarray] | None = None
        self.feature_names = [f"mfcc_{i}" for i in range(config.n_mfcc)] + ["rms", "zcr"]
        self.dim = len(self.feature_names)
        self.frames_per_second = config.sample_rate / config.hop_length

    @property
    def tables(self) -> tuple[np.ndarray, Any, np.ndarray]:
        """The analysis window, the sparse mel filterbank (CSR, bands x bins) and the transposed DCT matrix."""
        if self._tables is None:
            import scipy.fft
            import scipy.sparse

            config = self.config
            # periodic Hann window, as scipy.signal.get_window("hann", n_fft) and librosa use
            n = np.arange(config.n_fft)
            # tables are rounded to float32 once, so a last-bit difference of a CPU's cos or log
            # kernels does not reach them
            window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / config.n_fft)).astype(np.float32)
            # each FFT bin feeds at most two filters: a sparse product is ~2x faster than dense
            mel_basis = scipy.sparse.csr_matrix(
                mel_filterbank(sampling_rate=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                               fmin=config.fmin, fmax=config.fmax).astype(np.float32)
            )
            dct = scipy.fft.dct(np.eye(config.n_mels), type=2, norm="ortho", axis=0)
            dct_t = np.ascontiguousarray(dct[: config.n_mfcc].T.astype(np.float32).astype(np.float64))
            self._tables = (window, mel_basis, dct_t)
        return self._tables

    def before_fork(self) -> None:
        self.tables  # noqa: B018  (built before workers fork: they share it)

    def meta(self) -> dict[str, Any]:
        return {
            "feature_set": self.name,
            "params": to_dict(self.config),
            "feature_names": self.feature_names,
            "frames_per_second": self.frames_per_second,
            "sampling_rate": self.sampling_rate,
            "pretrained": False,
            "model": None,
            "definition": "librosa-compatible mfcc/rms/zero_crossing_rate, center=True",
        }

    def _mel_blocks(self, y: np.ndarray, n_frames: int):
        """The mel power ``[shape=(<= _BLOCK_FRAMES, n_mels), float32]`` of each block of frames, in order."""
        import scipy.fft

        window, mel_basis, _ = self.tables
        n_fft, hop = self.config.n_fft, self.config.hop_length
        for start in range(0, n_frames, _BLOCK_FRAMES):
            count = min(_BLOCK_FRAMES, n_frames - start)
            piece = padded_piece(y, n_fft // 2, start * hop, (start + count - 1) * hop + n_fft)
            frames = np.lib.stride_tricks.sliding_window_view(piece, n_fft)[::hop]
            spectrum = scipy.fft.rfft(frames * window, axis=1)
            power = spectrum.real**2 + spectrum.imag**2
            # the product scipy forms for ``power @ mel_basis.T``, without building the transposes per block
            yield np.asarray((mel_basis @ power.T).T)

    def _zero_crossing_rate(self, y: np.ndarray, pad: int, n_frames: int) -> np.ndarray:
        """librosa's rate: |x| <= threshold counts as zero, and zero as positive, so a sample is
        "negative" iff x < -threshold; the signal is padded by repeating its end samples, as
        librosa pads it for ``center=True``."""
        n_fft, hop = self.config.n_fft, self.config.hop_length
        counts = np.empty(n_frames, dtype=np.int64)
        for start in range(0, n_frames, _BLOCK_FRAMES):
            count = min(_BLOCK_FRAMES, n_frames - start)
            begin = start * hop
            piece = padded_piece(y, pad, begin, (start + count - 1) * hop + n_fft, edge=True)
            negative = piece < -_ZC_THRESHOLD
            crossing_at = np.flatnonzero(negative[1:] != negative[:-1]) + 1  # within the piece
            starts = np.arange(count) * hop
            # a frame counts crossings into its samples 1..n_fft-1 (not into its first sample)
            counts[start:start + count] = (np.searchsorted(crossing_at, starts + n_fft)
                                           - np.searchsorted(crossing_at, starts + 1))
        return counts / n_fft

    def extract(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        """Frame features of a mono signal.

        Parameters
        ----------
        samples : np.ndarray [shape=(n,)], n >= 1
        sampling_rate : int > 0
            Resampled to ``config.sample_rate`` when different.

        Returns
        -------
        np.ndarray [shape=(1 + n' // hop_length, n_mfcc + 2), dtype=float64]
            ``n'`` is the length after resampling; the store keeps float32.
        """
        y = resample(mono_signal(samples), orig_sr=sampling_rate, target_sr=self.sampling_rate)
        n_fft, hop = self.config.n_fft, self.config.hop_length
        pad = n_fft // 2  # STFT and RMS padding with zeros (librosa's default, center=True)
        n_frames = 1 + (len(y) + 2 * pad - n_fft) // hop

        # Same bytes on every machine: the float32 steps here (window, FFT, power, the sparse mel
        # product) are computed in a fixed order whatever the CPU; every sum whose order SIMD
        # kernels or BLAS choose (log, the DCT, frame energies) is float64, and the store rounds
        # the result to float32 once, below float64's last-bit differences.
        # Memory: the frames are analysed a block at a time. The top_db floor needs the loudest
        # band of the whole file before any MFCC, so the mel spectrogram (float32) is kept while it
        # is small, and computed a second time for a long file instead of held whole.
        keep = n_frames * self.config.n_mels * 4 <= _MEL_KEPT_BYTES
        kept: list[np.ndarray] = []
        peak = -np.inf
        for mel in self._mel_blocks(y, n_frames):
            peak = max(peak, float(mel.max()))
            if keep:
                kept.append(mel)
        floor = 10.0 * np.log10(max(peak, _AMIN)) - _TOP_DB
        mfcc = np.empty((n_frames, self.config.n_mfcc), dtype=np.float64)
        _, _, dct_t = self.tables
        for i, mel in enumerate(kept if keep else self._mel_blocks(y, n_frames)):
            log_mel = 10.0 * np.log10(np.maximum(np.asarray(mel, dtype=np.float64), _AMIN))
            np.maximum(log_mel, floor, out=log_mel)
            mfcc[i * _BLOCK_FRAMES:i * _BLOCK_FRAMES + len(mel)] = log_mel @ dct_t
        # frame energies: every frame is a whole number of blocks of gcd(n_fft, hop) samples, so a
        # running sum over the blocks' energies (sequential, so in one order everywhere) gives them
        rms = np.sqrt(np.maximum(frame_energies(y, pad, n_frames, n_fft, hop), 0.0) / n_fft)
        zcr = self._zero_crossing_rate(y, pad, n_frames)

        out = np.empty((n_frames, self.dim), dtype=np.float64)
        out[:, : self.config.n_mfcc] = mfcc
        out[:, -2] = rms
        out[:, -1] = zcr
        return out
