"""Audio I/O: the one place that reads files, mixes channels and resamples.

Compute code (feature extractors) receives ``(samples, sampling_rate)`` from here
and never opens a file itself. Files soundfile reads (wav, flac, ogg, mp3) are read
with it; the audio track of video containers (mp4, mkv, mov, webm, avi, m4a) is
decoded by the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships, so no system
ffmpeg is needed.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vocalab.errors import AudioError

#: soxr quality used everywhere; "HQ" is what librosa's default ``soxr_hq`` uses.
RESAMPLE_QUALITY = "HQ"

#: containers whose audio track is decoded with ffmpeg
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4a", ".mkv", ".mov", ".webm", ".avi"})
_STREAM = re.compile(r"Audio: (\w+).*?, (\d+) Hz, ([^,]+),")


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _probe(path: Path) -> tuple[int, int, str]:
    """``(sample_rate, channels, codec)`` of the first audio stream, from ffmpeg's report."""
    report = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True, text=True, timeout=120).stderr
    match = _STREAM.search(report)
    if match is None:
        raise AudioError(f"'{path}' has no audio stream that ffmpeg can read. Check the file, or extract its "
                         f"audio to WAV first.")
    layout = match.group(3).strip()
    channels = {"mono": 1, "stereo": 2}.get(layout)
    if channels is None:
        number = re.match(r"(\d+) channels", layout)
        channels = int(number.group(1)) if number else 2
    return int(match.group(2)), channels, match.group(1)


def _ffmpeg_decode(path: Path, sampling_rate: int) -> np.ndarray:
    """The audio track, mixed to mono by ffmpeg, as float32 at ``sampling_rate``."""
    result = subprocess.run(
        [_ffmpeg(), "-v", "error", "-nostdin", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sampling_rate),
         "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        capture_output=True, timeout=600,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"audio file '{path}' cannot be decoded by ffmpeg ({message[-1] if message else 'no output'}). "
                         f"Re-encode it or remove it.")
    return np.frombuffer(result.stdout, dtype=np.float32).copy()


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, read without decoding the samples."""

    path: str
    sample_rate: int
    channels: int
    num_frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.sample_rate


def read_info(path: str | Path) -> AudioInfo:
    """Read an audio file's header.

    Raises
    ------
    AudioError
        If the file is missing or its format cannot be read; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file '{path}' does not exist. Check the path or re-run 'download'.")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file '{path}' is empty (0 bytes), as an interrupted copy or download leaves it. "
                         f"Copy it again or remove it.")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        rate, channels, codec = _probe(path)
        return AudioInfo(path=str(path), sample_rate=rate, channels=channels,
                         num_frames=len(_ffmpeg_decode(path, rate)), format=path.suffix[1:].upper(),
                         subtype=codec.upper())
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(
            f"audio file '{path}' cannot be read ({err}). Re-encode it as WAV/FLAC or remove it."
        ) from err
    return AudioInfo(
        path=str(path),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        num_frames=int(info.frames),
        format=str(info.format),
        subtype=str(info.subtype),
    )


def resampled_length(num_samples: int, *, orig_sr: int, target_sr: int) -> int:
    """Length of a signal after :func:`resample`: ``ceil(n * target_sr / orig_sr)``."""
    if orig_sr == target_sr:
        return int(num_samples)
    return int(np.ceil(num_samples * target_sr / orig_sr))


def resample(samples: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono signal with soxr (HQ).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)]
    orig_sr, target_sr : int > 0
        Sampling rates in Hz.

    Returns
    -------
    np.ndarray [shape=(ceil(n * target_sr / orig_sr),), dtype=float32]
    """
    samples = np.asarray(samples, dtype=np.float32)
    if orig_sr == target_sr:
        return samples
    if orig_sr <= 0 or target_sr <= 0:
        raise AudioError(f"sampling rates must be positive, got {orig_sr} -> {target_sr}.")
    out = soxr.resample(samples, orig_sr, target_sr, quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)
    # soxr may return one sample more or less; fix the length as librosa does
    length = resampled_length(samples.size, orig_sr=orig_sr, target_sr=target_sr)
    if out.size > length:
        return out[:length]
    if out.size < length:
        return np.pad(out, (0, length - out.size))
    return out


def sample_blocks(path: str | Path, blocksize: int = 1 << 16):
    """The file's samples as float32 blocks ``(n, channels)``, without holding a whole
    audio file in memory (a video container's audio track is decoded whole, mixed to mono)."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        yield _ffmpeg_decode(path, _probe(path)[0])[:, None]
        return
    yield from sf.blocks(str(path), blocksize=blocksize, dtype="float32", always_2d=True)


def mono_signal(samples: np.ndarray) -> np.ndarray:
    """``samples`` as a float32 array, refused unless it is 1-D and not empty."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise AudioError(
            f"expected a mono signal of shape (n,), got shape {samples.shape}. "
            f"Mix channels first (vocalab.audio.to_mono)."
        )
    if samples.size == 0:
        raise AudioError("cannot extract features from an empty signal (0 samples).")
    return samples


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels: ``(n, channels)`` -> ``(n,)``; a 1-D signal is returned as is."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1, dtype=np.float32)


_PCM16_SCALE = np.float32(1.0 / 32768.0)  # libsndfile's own int16 -> float scale, a power of two: exact


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file soundfile reads, mixed to mono float32.

    16-bit files (most corpora) are read as int16 and scaled here: the same values as
    soundfile's float32 read, at a fifth of its cost.
    """
    with sf.SoundFile(str(path)) as handle:
        rate = int(handle.samplerate)
        if handle.subtype != "PCM_16":
            return to_mono(handle.read(dtype="float32", always_2d=True)), rate
        pcm = handle.read(dtype="int16", always_2d=True)
    if pcm.shape[1] == 1:
        return pcm[:, 0].astype(np.float32) * _PCM16_SCALE, rate
    return to_mono(pcm.astype(np.float32) * _PCM16_SCALE), rate


def load_audio(path: str | Path, *, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a file once to mono float32, resampled to ``sampling_rate`` if given.

    Returns
    -------
    samples : np.ndarray [shape=(n,), dtype=float32], in [-1, 1]
    sampling_rate : int
        The rate of ``samples`` (the file's own rate when none was asked for).

    Raises
    ------
    AudioError
        If the file cannot be decoded or holds no samples.
    """
    path = Path(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        file_sr = _probe(path)[0]
        mono = _ffmpeg_decode(path, file_sr)  # at its own rate: resampled below like any file
    else:
        try:
            mono, file_sr = _read_mono(path)
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            raise AudioError(
                f"audio file '{path}' cannot be decoded ({err}). Re-encode it or remove it, "
                f"then re-run the 'manifest' stage."
            ) from err
    if mono.shape[0] == 0:
        raise AudioError(f"audio file '{path}' holds no samples. Remove it or re-record it.")
    if sampling_rate is None:
        return mono, int(file_sr)
    return resample(mono, orig_sr=int(file_sr), target_sr=sampling_rate), sampling_rate


def padded_piece(y: np.ndarray, pad: int, begin: int, end: int, *, edge: bool = False) -> np.ndarray:
    """``np.pad(y, pad, mode="edge" if edge else "constant")[begin:end]``, without building the padded signal."""
    piece = np.zeros(end - begin, dtype=y.dtype)
    lo, hi = max(begin, pad), min(end, pad + len(y))
    if hi > lo:
        piece[lo - begin:hi - begin] = y[lo - pad:hi - pad]
    if edge:
        piece[:max(0, min(end, pad) - begin)] = y[0]
        piece[max(0, pad + len(y) - begin):] = y[-1]
    return piece


def cut_region(samples: np.ndarray, sampling_rate: int, start_s: float, end_s: float) -> np.ndarray:
    """The samples of ``[start_s, end_s)`` (a speech region); at least one sample, never an empty signal."""
    begin = min(int(round(start_s * sampling_rate)), max(0, len(samples) - 1))
    end = max(begin + 1, int(round(end_s * sampling_rate)))
    return samples[begin:end]


def audio_hash(path: str | Path) -> str:
    """BLAKE2b-128 of a file's bytes, as hex: the manifest's ``audio_hash``, and the key of feature cache entries."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trim_silent_ends(samples: np.ndarray, *, top_db: float, frame: int = 160) -> np.ndarray:
    """``samples`` without the quiet frames at either end: those more than ``top_db`` below the loudest.

    Frames of ``frame`` samples (10 ms at 16 kHz) are compared by RMS; what lies between
    the first and last loud frame is kept whole. A signal with no loud frame is returned as it is.
    """
    samples = np.asarray(samples)
    n_frames = len(samples) // frame
    if n_frames < 2:
        return samples
    rms = np.sqrt(np.mean(np.square(samples[:n_frames * frame].reshape(n_frames, frame), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10.0 ** (-top_db / 20.0))
    if len(loud) == 0:
        return samples
    start, stop = int(loud[0]) * frame, min(len(samples), (int(loud[-1]) + 1) * frame)
    return samples[start:stop]
