"""VGGish embeddings and the log-mel statistics of the VGGish front end, in one pass.

Each utterance gives two stores:

* ``vggish``: one 128-d embedding per 0.96 s example (frames at 1 / 0.96 s),
  pooled into mean and std (256 features);
* ``logmel``: every 10 ms frame of the 64-band log-mel spectrogram, pooled into
  the 64 band means and stds (128 features), as used as features in their own
  right. It is computed on the clip as it is, whatever the short-clip policy.

Clips under 0.975 s fill no example. ``short_clips`` says what happens to them:
``pad`` (silence appended, the default), ``repeat`` (the clip tiled) or ``drop``
(no VGGish frames; the utterance is absent from the ``vggish`` store and counted).
Examples of many clips are batched through the network together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Sequence

import numpy as np

from vocalab.audio import mono_signal, resample, resampled_length
from vocalab.errors import ParamsError, WeightsError
from vocalab.features import vggish_frontend as frontend
from vocalab.features.store import Output
from vocalab.features.torch_runtime import TorchExtractor, preferred_workers, resolve_device
from vocalab.features.vggish_model import (
    EMBEDDING_SIZE,
    build_vggish,
    embedded_pca,
    init_random,
    load_weights,
    postprocess,
    read_checkpoint,
    read_pca,
)
from vocalab.fetch import fetch
from vocalab.features.registry import register_extractor
from vocalab.params import bounded, check_device_param, to_dict

if TYPE_CHECKING:
    import pandas as pd

SECTION = "embeddings.vggish"
#: the torchvggish release: a port of the original TensorFlow checkpoint and PCA parameters
WEIGHTS_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
PCA_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish_pca_params-970ea276.pth"


@dataclass(frozen=True)
class VGGishExtractorConfig:
    """``embeddings.vggish``: which weights, which embedding, and how to treat short clips.

    init : str              ``pretrained`` loads ``weights``; ``random`` builds VGGish seeded (no download)
    weights : str           path or http(s) URL of a torchvggish-format state dict
    weights_sha256 : str    its SHA-256; null: the hash prefix in the file name (``vggish-10086976.pth``)
    seed : int >= 0         seed of the random initialisation
    embedding : str         ``pre_relu`` (as released) or ``post_relu`` (after a final ReLU)
    postprocess : bool      PCA whitening, clipping to [-2, 2] and 8-bit quantisation (values 0..255)
    pca_params : str        path or URL of the PCA parameters; null: those inside ``weights``
    pca_params_sha256 : str its SHA-256; null: the hash prefix in the file name
    short_clips : str       clips under 0.975 s: ``pad`` | ``repeat`` | ``drop``
    device : str            ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``
    dtype : str             compute dtype: ``float32`` (faithful) or ``bfloat16`` (faster, ~1e-2 off)
    batch_examples : int    0.96 s examples per forward pass
    conv : str              3x3 convolutions on CPU in float32: ``direct`` (torch's) or ``winograd`` (fewer products)
    frames_dtype : str      storage of frames (pooled statistics are float32)
    """

    init: Literal["pretrained", "random"] = "random"
    weights: str = WEIGHTS_URL
    weights_sha256: str | None = None
    seed: int = bounded(0, ge=0)
    embedding: Literal["pre_relu", "post_relu"] = "pre_relu"
    postprocess: bool = False
    pca_params: str | None = PCA_URL
    pca_params_sha256: str | None = None
    short_clips: Literal["pad", "repeat", "drop"] = "pad"
    device: str = "auto"
    dtype: Literal["float32", "bfloat16"] = "float32"
    batch_examples: int = bounded(32, ge=1, le=65536)
    conv: Literal["direct", "winograd"] = "direct"
    frames_dtype: Literal["float16", "float32"] = "float32"

    def check(self, section: str) -> None:
        check_device_param(self.device, section)
        if self.postprocess and self.init == "random":
            raise ParamsError(
                f"params key '{section}.postprocess' = true needs the released PCA parameters, which were fit "
                f"to the pretrained network's embeddings; with init: random they are meaningless. "
                f"Set postprocess: false, or init: pretrained."
            )


@register_extractor(section=SECTION, config=VGGishExtractorConfig, outputs=("vggish", "logmel"))
class VGGishExtractor(TorchExtractor):
    """``extract(samples, rate) -> {"vggish": (n_examples, 128), "logmel": (t, 64)}``.

    Construction fetches, verifies and loads the weights, so a bad source fails
    before any audio is read. The model is not pickled: worker processes load it
    again through the same code (a downloaded file comes from the cache).
    """

    name = "vggish"
    # a worker takes seconds to start (torch and the model): worth it for this much audio (benchmarks/RESULTS.md)
    audio_s_per_worker: ClassVar[float] = 300.0
    sampling_rate = frontend.SAMPLE_RATE
    dim = EMBEDDING_SIZE

    def __init__(self, config: VGGishExtractorConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device, SECTION)
        self.frames_dtype = config.frames_dtype
        self.feature_names = [f"vggish_{i:03d}" for i in range(EMBEDDING_SIZE)]
        self.shard_size = 256 if self.device.type == "cuda" else 32
        self.preferred_workers = preferred_workers(self.device)
        self.weights_info: dict[str, Any] | None = None
        self.pca_info: dict[str, Any] | None = None
        self._model: Any = None
        self._pca: tuple[np.ndarray, np.ndarray] | None = None
        self.load()

    # -- set-up ---------------------------------------------------------------------------

    def _load(self) -> None:
        config = self.config
        model = build_vggish(post_relu=config.embedding == "post_relu", conv=config.conv)
        state: dict[str, Any] = {}
        if config.init == "random":
            init_random(model, config.seed)
        else:
            key = f"{SECTION}.weights"
            fetched = fetch(config.weights, sha256=config.weights_sha256, key=key)
            state = read_checkpoint(fetched.path, key)
            fmt = load_weights(model, state, key=key, source=str(fetched.path))
            self.weights_info = {"location": config.weights, "sha256": fetched.sha256,
                                 "verified_by": fetched.verified, "format": fmt}
        if config.postprocess:
            if config.pca_params is None:
                self._pca = embedded_pca(state, key=f"{SECTION}.weights")
                if self._pca is None:
                    raise WeightsError(
                        f"'{SECTION}.pca_params' is null, but {config.weights} holds no PCA parameters. "
                        f"Set pca_params to torchvggish's vggish_pca_params-970ea276.pth (path or URL)."
                    )
                self.pca_info = {"location": "inside weights"}
            else:
                key = f"{SECTION}.pca_params"
                fetched = fetch(config.pca_params, sha256=config.pca_params_sha256, key=key)
                self._pca = read_pca(read_checkpoint(fetched.path, key), key=key, source=str(fetched.path))
                self.pca_info = {"location": config.pca_params, "sha256": fetched.sha256,
                                 "verified_by": fetched.verified}
        self.num_parameters = int(sum(p.numel() for p in model.parameters()))
        self._model = model.to(self.device)

    def _frontend_meta(self) -> dict[str, Any]:
        return {
            "sampling_rate": self.sampling_rate,
            "frontend": {"window_s": frontend.WINDOW_S, "hop_s": frontend.HOP_S, "fft_length": frontend.FFT_LENGTH,
                         "window": "periodic hann", "num_bands": frontend.NUM_BANDS,
                         "mel_hz": [frontend.MEL_MIN_HZ, frontend.MEL_MAX_HZ], "mel_scale": "htk",
                         "log_offset": frontend.LOG_OFFSET},
        }

    def meta(self) -> dict[str, Any]:
        """Meta of the ``vggish`` store."""
        import torch

        return {
            "feature_set": "vggish",
            "params": to_dict(self.config),
            **self._frontend_meta(),
            "model": "vggish",
            "pretrained": self.config.init == "pretrained",
            "weights": self.weights_info,
            "pca": self.pca_info,
            "embedding": "postprocessed (PCA, 8-bit)" if self.config.postprocess else self.config.embedding,
            "num_parameters": self.num_parameters,
            "example_s": frontend.EXAMPLE_S,
            "feature_names": self.feature_names,
            "frames_per_second": 1.0 / frontend.EXAMPLE_S,
            "device": self.device.type,
            "compute_dtype": self.config.dtype,
            "torch": torch.__version__.split("+")[0],
        }

    def logmel_meta(self) -> dict[str, Any]:
        centers = np.linspace(frontend.htk_hz_to_mel(frontend.MEL_MIN_HZ), frontend.htk_hz_to_mel(frontend.MEL_MAX_HZ),
                              frontend.NUM_BANDS + 2)[1:-1]
        return {
            "feature_set": "logmel",
            # only what log-mel frames depend on: other vggish params leave this store as it is
            "params": {"frames_dtype": self.config.frames_dtype},
            **self._frontend_meta(),
            "pretrained": False,
            "feature_names": [f"logmel_{i:02d}" for i in range(frontend.NUM_BANDS)],
            "band_centers_hz": [round(float(700.0 * np.expm1(m / 1127.0)), 2) for m in centers],
            "frames_per_second": 1.0 / frontend.HOP_S,
        }

    def describe(self, manifest: pd.DataFrame) -> str:
        """One line for the stage log: weights, embedding, device, and the short clips of ``manifest``."""
        config = self.config
        return (f"VGGish ({'pretrained' if config.init == 'pretrained' else 'random init'}, "
                f"{self.num_parameters / 1e6:.1f} M parameters), {config.embedding}"
                f"{', postprocessed' if config.postprocess else ''}, {self.device.type}; "
                f"{len(short_clip_ids(manifest))} clip(s) under {frontend.MIN_CLIP_S} s -> {config.short_clips}")

    def store_meta(self, manifest: pd.DataFrame) -> dict[str, dict[str, Any]]:
        """What the ``vggish`` store records of this manifest: its short clips and the policy applied to them."""
        return {"vggish": {"short_clips": {"policy": self.config.short_clips, "min_duration_s": frontend.MIN_CLIP_S,
                                           "utt_ids": short_clip_ids(manifest)}}}

    def outputs(self) -> list[Output]:
        return [Output("vggish", EMBEDDING_SIZE, self.frames_dtype, self.meta()),
                Output("logmel", frontend.NUM_BANDS, self.frames_dtype, self.logmel_meta())]

    # -- extraction -----------------------------------------------------------------------

    def extract(self, samples: np.ndarray, sampling_rate: int) -> dict[str, np.ndarray]:
        """Both outputs for one mono signal (resampled to 16 kHz when needed)."""
        samples = mono_signal(samples)
        return self.extract_batch([resample(samples, orig_sr=sampling_rate, target_sr=self.sampling_rate)])[0]

    def extract_batch(self, signals: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Both outputs for several 16 kHz signals; their examples go through the network together.

        Returns, per signal, ``vggish`` [shape=(n_examples, 128), float32] (no rows for
        a dropped short clip) and ``logmel`` [shape=(t, 64), float32] (clips under 25 ms
        are padded to one frame).
        """
        logmels, batches = [], []
        for samples in signals:
            samples = mono_signal(samples)
            padded = samples if len(samples) >= frontend.WINDOW_LENGTH else np.pad(
                samples, (0, frontend.WINDOW_LENGTH - len(samples)))
            frames = frontend.log_mel(padded)
            logmels.append(frames)
            fitted = frontend.fit_short_clip(samples, self.config.short_clips)
            if fitted is None:
                batches.append(np.zeros((0, frontend.EXAMPLE_FRAMES, frontend.NUM_BANDS), dtype=np.float32))
            else:
                batches.append(frontend.examples(frames if fitted is samples else frontend.log_mel(fitted)))
        counts = [len(b) for b in batches]
        embeddings = self.embed(np.concatenate(batches))
        pieces = np.split(embeddings, np.cumsum(counts)[:-1])
        return [{"vggish": piece, "logmel": frames} for piece, frames in zip(pieces, logmels)]

    def embed(self, examples: np.ndarray) -> np.ndarray:
        """Embeddings of log-mel examples, ``batch_examples`` at a time.

        Parameters
        ----------
        examples : np.ndarray [shape=(n, 96, 64)]

        Returns
        -------
        np.ndarray [shape=(n, 128), dtype=float32]
        """
        import torch

        out = np.zeros((len(examples), EMBEDDING_SIZE), dtype=np.float32)
        step = self.config.batch_examples
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.config.dtype == "bfloat16"):
            for start in range(0, len(examples), step):
                # every pass has the same shape (the last one padded with silence): an example's embedding
                # then depends on that example alone, not on which files share its batch, so cached and
                # freshly computed embeddings are the same bytes
                chunk = examples[start:start + step]
                batch = np.zeros((step, *examples.shape[1:]), dtype=np.float32)
                batch[:len(chunk)] = chunk
                result = self._model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()
                out[start:start + len(chunk)] = result[:len(chunk)]
        if self._pca is not None and len(out):
            out = postprocess(out, *self._pca)
        return out


def short_clip_ids(manifest: pd.DataFrame) -> list[str]:
    """utt_ids of the clips that fill no 0.96 s example (under 0.975 s at 16 kHz)."""
    lengths = [resampled_length(int(round(d * sr)), orig_sr=int(sr), target_sr=frontend.SAMPLE_RATE)
               for d, sr in zip(manifest["duration_s"], manifest["sample_rate"])]
    return [u for u, n in zip(manifest["utt_id"].astype(str), lengths) if n < frontend.MIN_EXAMPLE_SAMPLES]
