"""Shared fixtures: tiny synthetic WAVs written to tmp_path, never the network."""

from __future__ import annotations

import atexit
import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

# in parallel test workers (make test runs one per core), every thread pool keeps to one thread, or
# OpenMP and torch pools spinning on the same cores slow each other down many times over; set before
# numpy, torch or scikit-learn start their pools. Tests of thread counts set theirs explicitly.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _variable in THREAD_VARIABLES:
        os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

# no test may reach a model hub or anything else outside this machine
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# feature caches and downloads of this test run go to a folder of its own, removed at the end
_CACHE = tempfile.mkdtemp(prefix="vocalab-test-cache-")
os.environ["VOCALAB_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

# imported after the settings above, which libraries read when they load
from vocalab.testing.wav2vec2_tiny import save_tiny_wav2vec2  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def json_from_fresh_process(script: str, *args: str, env: dict[str, str]) -> dict:
    """Run ``script`` in a new Python with ``env`` added (NumPy and OpenBLAS pick their CPU kernels when a
    process imports them) and thread counts as a user's are; the JSON of its last line."""
    import json
    import subprocess
    import sys

    inherited = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                            env={**inherited, "PYTHONPATH": str(REPO_ROOT / "src"), **env})
    assert result.returncode == 0, f"{env}: {result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def tone(frequency_hz: float, *, sampling_rate: int = 16000, duration_s: float = 1.0,
         amplitude: float = 0.5) -> np.ndarray:
    """A pure sine, float32."""
    t = np.arange(int(round(duration_s * sampling_rate))) / sampling_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sampling_rate: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, sampling_rate, subtype=subtype)
    return path


@pytest.fixture
def wav_factory(tmp_path):
    """``wav_factory(name, samples, sampling_rate, subtype)`` -> path under tmp_path."""

    def make(name: str, samples: np.ndarray, sampling_rate: int = 16000, subtype: str = "PCM_16") -> Path:
        return write_wav(tmp_path / name, samples, sampling_rate, subtype)

    return make


def to_mp4(wav: Path, mp4: Path) -> Path:
    """Encode a WAV as AAC in an mp4 container with the ffmpeg of the imageio-ffmpeg wheel."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(wav), "-c:a", "aac",
                    "-y", str(mp4)], check=True, timeout=60)
    return mp4


def speech_like(seed: int, *, sampling_rate: int = 16000, duration_s: float = 1.5) -> np.ndarray:
    """A harmonic signal with a gliding pitch and an envelope: cheap stand-in for speech."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sampling_rate)
    t = np.arange(n) / sampling_rate
    f0 = rng.uniform(90, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.clip(np.sin(np.pi * t / duration_s), 0, None)
    noise = 0.01 * rng.standard_normal(n)
    return (0.3 * envelope * signal + noise).astype(np.float32)


@pytest.fixture
def ravdess_tree(tmp_path):
    """A tiny RAVDESS-named corpus: 4 actors x 3 emotions x 2 statements, 16 kHz."""
    root = tmp_path / "raw"
    for actor in range(1, 5):
        for emotion in (1, 3, 5):
            for statement in (1, 2):
                name = f"03-01-{emotion:02d}-01-{statement:02d}-01-{actor:02d}.wav"
                samples = speech_like(actor * 100 + emotion * 10 + statement)
                write_wav(root / f"Actor_{actor:02d}" / name, samples, 16000)
    return root


@pytest.fixture(scope="session")
def tiny_wav2vec2(tmp_path_factory) -> Path:
    """A saved tiny base-style (group-norm) wav2vec 2.0 directory."""
    return save_tiny_wav2vec2(tmp_path_factory.mktemp("tiny-wav2vec2"))


@contextlib.contextmanager
def serve_directory(root: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 serving ``root``; yields its base URL and the paths requested."""
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
