"""Voice activity: each utterance's speech region, found by Silero VAD.

The network is the one the ``silero-vad`` wheel ships (MIT licence), read from its
``silero_vad_16k.safetensors`` (tensors only: nothing in it can run code) after its
SHA-256 is checked, and run by :class:`SileroVAD`, a torch module of the same
layers. Its front end (an STFT as a convolution, then four convolutions) sees each
32 ms chunk with 4 ms of context independently, so it runs on every chunk of a batch
of signals at once; only the LSTM cell steps through the chunks in order.

An utterance's region is the span from the start of its first speech segment to the
end of its last, with ``padding_ms`` each side (segments as silero's own
``get_speech_timestamps_from_probs`` finds them). A clip in which no speech is found
keeps its whole extent and is counted; it is never dropped or left empty.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Sequence

import numpy as np

from vocalab import cpu_kernels
from vocalab.errors import WeightsError, load_failure
from vocalab.features.base import SPEECH_REGION
from vocalab.fetch import checked_file, packaged_file
from vocalab.params import bounded

if TYPE_CHECKING:
    import torch

SECTION = "vad"
SAMPLE_RATE = 16000
CHUNK = 512  # samples per probability (32 ms)
CONTEXT = 64  # samples of the previous chunk each chunk sees
ENCODED_ROWS = 4096  # chunks encoded at once, over a batch (about 14 KB each)
#: the weights file inside the silero-vad wheel, and its SHA-256 (silero-vad 6.2.3)
SILERO_PACKAGE = "silero_vad"
SILERO_WEIGHTS = "data/silero_vad_16k.safetensors"
SILERO_SHA256 = "c59271c284ae9c8335d795d60e0bfdb71aaaceec578d9bd9ffc1b8153c319ea1"
#: columns of the region table (``data/vad.csv``)
REGION_COLUMNS = ("utt_id", "audio_hash", "duration_s", *SPEECH_REGION, "speech_found")


@dataclass(frozen=True)
class VADConfig:
    """params.yaml ``vad``.

    method : str            silero (the wheel's network) | none (every clip whole)
    threshold : float       speech probability that starts a segment (it ends below threshold - 0.15)
    padding_ms : int        kept each side of the speech found
    min_speech_ms : int     shorter segments are not speech
    """

    method: Literal["silero", "none"] = "silero"
    threshold: float = bounded(0.5, gt=0.15, lt=1.0)
    padding_ms: int = bounded(250, ge=0, le=2000)
    min_speech_ms: int = bounded(250, ge=0, le=5000)


@contextlib.contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Restore torch's thread count after importing a module that sets it (silero_vad sets 1 on import)."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _silero_module() -> Any:
    import torch
    from torch import nn

    class SileroVAD(nn.Module):
        """Silero VAD v5/v6 at 16 kHz, as the wheel's safetensors hold it."""

        def __init__(self) -> None:
            super().__init__()
            self.stft_conv = nn.Conv1d(1, 258, kernel_size=256, stride=128, bias=False)
            self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
            self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
            self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
            self.lstm_cell = nn.LSTMCell(128, 128)
            self.final_conv = nn.Conv1d(128, 1, 1)

        def encode(self, chunks: torch.Tensor) -> torch.Tensor:
            """``[shape=(n, CONTEXT + CHUNK)]`` chunks with their context -> ``[shape=(n, 128)]``."""
            x = nn.functional.pad(chunks, (0, 64), mode="reflect").unsqueeze(1)
            x = self.stft_conv(x)
            x = torch.sqrt(x[:, :129] ** 2 + x[:, 129:] ** 2)
            for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
                x = torch.relu(conv(x))
            return x.squeeze(-1)

        def forward(self, signals: torch.Tensor) -> torch.Tensor:
            """Speech probability of each 512-sample chunk: ``[shape=(b, n)]`` for ``[shape=(b, n * 512)]``.

            The chunks are encoded and stepped through a segment at a time (at most
            :data:`ENCODED_ROWS` chunks of the batch at once), the LSTM's state carried
            from one segment to the next: memory does not grow with a recording's length.
            """
            return self.probabilities(nn.functional.pad(signals, (CONTEXT, 0)))

        def probabilities(self, padded_signals: torch.Tensor) -> torch.Tensor:
            """:meth:`forward` of signals already preceded by ``CONTEXT`` zeros (no copy of them is made)."""
            batch, n = padded_signals.shape[0], (padded_signals.shape[1] - CONTEXT) // CHUNK
            padded = padded_signals.unfold(1, CONTEXT + CHUNK, CHUNK)[:, :n]
            segment = max(16, ENCODED_ROWS // max(1, batch))
            h = c = torch.zeros(batch, 128, dtype=padded_signals.dtype)
            out = []
            for begin in range(0, n, segment):
                part = padded[:, begin:begin + segment]
                steps = part.shape[1]
                encoded = self.encode(part.reshape(batch * steps, CONTEXT + CHUNK)).reshape(batch, steps, 128)
                hidden = []
                for step in range(steps):
                    h, c = self.lstm_cell(encoded[:, step], (h, c))
                    hidden.append(h)
                out.append(torch.sigmoid(self.final_conv(torch.relu(torch.stack(hidden, dim=2))))[:, 0, :])
            return torch.cat(out, dim=1)

    return SileroVAD


def load_silero(path: Path | None = None, sha256: str = SILERO_SHA256) -> Any:
    """The silero network with the wheel's weights (or those at ``path``), their hash checked first."""
    from safetensors.torch import load_file

    path = checked_file(path or packaged_file(SILERO_PACKAGE, SILERO_WEIGHTS), sha256)
    model = _silero_module()()
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as err:  # noqa: BLE001 - any failure to read the file is the same bad file
        raise WeightsError(f"'{path}' does not hold silero VAD weights ({load_failure(err)}).") from err
    return model.eval()


def speech_probabilities(model: Any, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each 16 kHz signal's speech probability per 32 ms chunk (the last chunk zero-padded).

    Signals are batched together (zero-padded at the end: the network reads forward in
    time, so padding after a signal changes none of its chunks).
    """
    import torch

    counts = [max(1, -(-len(s) // CHUNK)) for s in signals]
    batch = np.zeros((len(signals), CONTEXT + max(counts) * CHUNK), dtype=np.float32)  # the one copy of the audio
    for row, samples in zip(batch, signals):
        row[CONTEXT:CONTEXT + len(samples)] = samples
    with cpu_kernels.one_torch_thread(), torch.inference_mode():
        probs = model.probabilities(torch.from_numpy(batch)).numpy()
    return [p[:n].astype(np.float64) for p, n in zip(probs, counts)]


def speech_region(probs: np.ndarray, n_samples: int, config: VADConfig) -> tuple[int, int] | None:
    """The first and last sample of speech, padded, from one signal's probabilities; None if no speech."""
    with torch_threads_kept():
        from silero_vad.utils_vad import get_speech_timestamps_from_probs

    segments = get_speech_timestamps_from_probs(
        probs.tolist(), sampling_rate=SAMPLE_RATE, threshold=config.threshold,
        min_speech_duration_ms=config.min_speech_ms, speech_pad_ms=config.padding_ms,
        audio_length_samples=n_samples)
    if not segments:
        return None
    return int(segments[0]["start"]), int(segments[-1]["end"])


@dataclass(frozen=True)
class Region:
    """An utterance's speech region in seconds; ``speech_found`` False: the whole clip, kept as it is."""

    start_s: float
    end_s: float
    speech_found: bool


def find_regions(model: Any, signals: Sequence[np.ndarray], config: VADConfig) -> list[Region]:
    """The speech region of each 16 kHz signal."""
    regions = []
    for samples, probs in zip(signals, speech_probabilities(model, signals)):
        found = speech_region(probs, len(samples), config)
        start, end = found if found else (0, len(samples))
        regions.append(Region(round(start / SAMPLE_RATE, 4), round(end / SAMPLE_RATE, 4), found is not None))
    return regions


def whole(duration_s: float) -> Region:
    """The region of a clip kept whole (``method: none``)."""
    return Region(0.0, round(float(duration_s), 4), False)


def file_regions(paths: Sequence[str], config: VADConfig, *, batch_files: int = 32, progress: bool = False,
                 model: Any = None) -> list[Region]:
    """The speech region of each file, decoded and run ``batch_files`` at a time in order of length."""
    from tqdm import tqdm

    from vocalab.audio import load_audio, read_info

    if config.method == "none":
        return [whole(read_info(p).duration_s) for p in paths]
    model = model or load_silero()

    regions: dict[int, Region] = {}
    lengths = [Path(p).stat().st_size for p in paths]  # a proxy for duration, to batch similar lengths
    order = sorted(range(len(paths)), key=lengths.__getitem__)
    with tqdm(total=len(paths), unit="file", desc="vad", disable=not progress, dynamic_ncols=True) as bar:
        for begin in range(0, len(order), batch_files):
            batch = order[begin:begin + batch_files]
            signals = [load_audio(paths[i], sampling_rate=SAMPLE_RATE)[0] for i in batch]
            regions.update(zip(batch, find_regions(model, signals, config)))
            bar.update(len(batch))
    return [regions[i] for i in range(len(paths))]


def region_table(manifest: Any, config: VADConfig, *, batch_files: int = 32, progress: bool = True,
                 model: Any = None) -> Any:
    """``data/vad.csv``: each manifest utterance's speech region (columns :data:`REGION_COLUMNS`)."""
    import pandas as pd

    if config.method == "none":
        regions = [whole(d) for d in manifest["duration_s"]]
    else:
        regions = file_regions(manifest["path"].astype(str).tolist(), config, batch_files=batch_files,
                               progress=progress, model=model)
    return pd.DataFrame({
        "utt_id": manifest["utt_id"].astype(str), "audio_hash": manifest["audio_hash"].astype(str),
        "duration_s": manifest["duration_s"].astype(float),
        SPEECH_REGION[0]: [r.start_s for r in regions], SPEECH_REGION[1]: [r.end_s for r in regions],
        "speech_found": [r.speech_found for r in regions],
    })


def summary(table: Any, config: VADConfig) -> dict[str, Any]:
    """``metrics/vad.json``: how much was kept, and every clip in which no speech was found (kept whole)."""
    start, end = SPEECH_REGION
    kept = (table[end] - table[start]).clip(lower=0)
    no_speech = table.loc[~table["speech_found"].astype(bool), "utt_id"].astype(str).tolist()
    trimmed = (table[start] > 0) | (table[end] < table["duration_s"] - 1e-3)
    return {
        "method": config.method,
        "n_utterances": int(len(table)),
        "n_trimmed": int((trimmed & table["speech_found"].astype(bool)).sum()),
        "n_no_speech": len(no_speech) if config.method != "none" else 0,
        "no_speech_utt_ids": no_speech if config.method != "none" else [],
        "audio_s": round(float(table["duration_s"].sum()), 3),
        "kept_s": round(float(kept.sum()), 3),
    }


def with_regions(manifest: Any, table_path: Path) -> Any:
    """The manifest with each utterance's speech region from ``table_path`` (the ``vad`` stage's table).

    A table written for another manifest (an utterance missing, or its audio changed) is refused.
    """
    import pandas as pd

    from vocalab.errors import ManifestError

    if not Path(table_path).is_file():
        raise ManifestError(f"speech-region table '{table_path}' not found. Build it with: dvc repro vad")
    table = pd.read_csv(table_path, dtype={"utt_id": str, "audio_hash": str})
    missing = [c for c in REGION_COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(f"'{table_path}' lacks the column(s) {', '.join(missing)}. Rebuild it: dvc repro vad")
    merged = manifest.merge(table[["utt_id", "audio_hash", *SPEECH_REGION]], on="utt_id", how="left",
                            suffixes=("", "_vad"))
    stale = merged[SPEECH_REGION[0]].isna() | (merged["audio_hash_vad"] != merged["audio_hash"])
    if stale.any():
        first = merged.loc[stale, "utt_id"].iloc[0]
        raise ManifestError(f"'{table_path}' has no region for {int(stale.sum())} manifest utterance(s) (first: "
                            f"{first}), or one of another recording: it was made for another manifest. "
                            f"Rebuild it: dvc repro vad")
    return merged.drop(columns=["audio_hash_vad"])
