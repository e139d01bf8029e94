"""wav2vec 2.0 frame embeddings, batched exactly and chunked with bounded memory.

The model comes from a Hugging Face hub id, a local directory written by
``save_pretrained``, or a weights file with a ``config.json`` beside it. With
``init: random`` the same architecture is built from its config and seeded, so the
pipeline runs where no weights can be had; metadata then says ``pretrained: false``.

Exact batching. A base model (``feat_extract_norm: group``) normalises each channel
of its first convolution over the whole utterance, so zero padding changes its
output: this is why the usual advice is "one file at a time". The first
convolution is linear, so each channel's mean and variance over the utterance
follow in closed form from the mean and covariance of the raw sample windows it
sees. They are computed per utterance from its own samples and used in place of
the batch statistics. Every later layer sees only valid frames or is masked (the
attention mask zeroes padded frames before the positional convolution and hides
them from attention), so a padded batch gives each utterance what it would get
alone, to float rounding. The same statistics make chunked long files exact in
the convolutional encoder; only attention context is cut at the chunk edges,
which the overlap covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Sequence

import numpy as np

from vocalab.audio import mono_signal, resample, trim_silent_ends
from vocalab.errors import ParamsError, VocalabError, WeightsError
from vocalab.features.wav2vec2_source import (
    BASE_MODEL_ID,
    SECTION,
    conv_geometry,
    build_model,
    load_hf_config,
    load_preprocessing,
    resolve_source,
)
from vocalab.features.torch_runtime import TorchExtractor, cpu_has_native_bfloat16, preferred_workers, resolve_device
from vocalab.features.registry import register_extractor
from vocalab.params import bounded, check_device_param, to_dict

if TYPE_CHECKING:
    import torch

#: families whose padded batches give each utterance what it gets alone
EXACT_BATCH_FAMILIES = ("wav2vec2", "hubert", "wavlm")
_NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor's zero-mean unit-variance epsilon
_CUDA_BATCH_S = 120.0


@dataclass(frozen=True)
class Wav2Vec2ExtractorConfig:
    """``embeddings.wav2vec2``: which model, which layers, how to run it.

    model : str            hub id, local directory (config.json + weights) or weights file
    init : str             ``pretrained`` loads weights; ``random`` builds the architecture, seeded
    seed : int >= 0        seed of the random initialisation
    layers : str or list   ``middle`` (the output of the middle transformer layer, 6 of 12 for Base),
                           ``last`` (the model output), ``all`` (input + every layer) or layer
                           indices, 0 = transformer input, i = output of layer i
    device : str           ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``
    dtype : str            ``float32`` (the same bytes on CPUs of one instruction set), ``auto``
                           (bfloat16 on a CPU that computes it natively, AVX-512 BF16 or AMX, else
                           float32; bfloat16/float16 on CUDA), or a dtype
    batch_s : float > 0    padded audio seconds per forward pass; null: one utterance per pass
                           on CPU (batching does not pay there), 120 s on CUDA
    chunk_s : float        longer files are cut into windows of at most this many seconds
    chunk_overlap_s : float  context kept on each side of a window and then discarded
    frames_dtype : str     storage type of frame embeddings (pooled stats are float32)
    trim_db : float        opt-in: cut the ends quieter than this many dB below the loudest 10 ms
                           (null: keep every sample); less audio to run, different features
    """

    model: str = BASE_MODEL_ID
    init: Literal["pretrained", "random"] = "random"
    seed: int = bounded(0, ge=0)
    layers: Literal["middle", "last", "all"] | tuple[int, ...] = "middle"
    device: str = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "float32"
    batch_s: float | None = bounded(None, gt=0.0)
    chunk_s: float = bounded(30.0, ge=2.0, le=600.0)
    chunk_overlap_s: float = bounded(2.0, ge=0.0)
    frames_dtype: Literal["float16", "float32"] = "float16"
    trim_db: float | None = bounded(None, ge=10.0, le=120.0)

    def check(self, section: str) -> None:
        check_device_param(self.device, section)
        if isinstance(self.layers, tuple):
            if not self.layers:
                raise ParamsError(f"params key '{section}.layers' is an empty list: name at least one layer, "
                                  f"or use last or all.")
            if len(set(self.layers)) != len(self.layers) or any(i < 0 for i in self.layers):
                raise ParamsError(f"params key '{section}.layers' = {list(self.layers)} must list distinct "
                                  f"layer indices >= 0.")
        if 2 * self.chunk_overlap_s >= self.chunk_s / 2:
            raise ParamsError(
                f"params key '{section}.chunk_overlap_s' = {self.chunk_overlap_s} is too large for "
                f"chunk_s = {self.chunk_s}: the overlap on both sides must stay under half a chunk. "
                f"Lower chunk_overlap_s or raise chunk_s."
            )


# ---------------------------------------------------------------------------------------
# Exact batching: first-convolution statistics per utterance


def _group_norm_class() -> type:
    import torch

    class UtteranceStatsGroupNorm(torch.nn.GroupNorm):
        """GroupNorm (one group per channel) that can use given per-utterance statistics.

        ``stats`` is ``(mean, var)`` of shape ``(batch, channels)`` or ``None`` (plain
        GroupNorm). Computed and returned in float32 whatever the autocast dtype (the
        next convolution casts again under autocast).
        """

        stats: tuple[torch.Tensor, torch.Tensor] | None = None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.stats is None:
                return super().forward(x.float())
            mean, var = self.stats
            y = (x.float() - mean[:, :, None]) * torch.rsqrt(var[:, :, None] + self.eps)
            return y * self.weight[None, :, None] + self.bias[None, :, None]

    return UtteranceStatsGroupNorm


def _bake_weight_norm(conv: torch.nn.Module) -> None:
    """Compute a weight-normalised layer's weight once, in place of on every forward pass.

    The positional convolution's weight is ``g * v / ||v||`` (weight normalisation, a
    training device); inference recomputed it from the same two tensors on every batch. The baked
    weight is that same computation's result.
    """
    import torch

    parametrizations = getattr(conv, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        torch.nn.utils.parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
    elif hasattr(conv, "weight_g"):  # the older hook-based weight_norm
        torch.nn.utils.remove_weight_norm(conv)


def num_frames(num_samples: int, hf_config: Any) -> int:
    """Frames the feature encoder makes from ``num_samples`` samples (0 if too short)."""
    length = num_samples
    for kernel, stride in zip(hf_config.conv_kernel, hf_config.conv_stride):
        if length < kernel:
            return 0
        length = (length - kernel) // stride + 1
    return length


def first_conv_stats(samples: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                     stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (biased) variance over time of ``conv1d(samples)``.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], n >= kernel
    weight : np.ndarray [shape=(channels, kernel)]
    bias : np.ndarray [shape=(channels,)] or None
    stride : int > 0

    Returns
    -------
    mean, var : np.ndarray [shape=(channels,), dtype=float64]
    """
    kernel = weight.shape[1]
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(samples, dtype=np.float64), kernel)[::stride]
    mu = windows.mean(axis=0)
    second = windows.T @ windows / len(windows)
    w = np.asarray(weight, dtype=np.float64)
    mean = w @ mu
    var = np.einsum("ck,kl,cl->c", w, second, w) - mean**2
    if bias is not None:
        mean = mean + np.asarray(bias, dtype=np.float64)
    return mean, np.maximum(var, 0.0)


@dataclass(frozen=True)
class _Window:
    utterance: int
    start: int  # first sample
    stop: int  # one past the last sample
    keep_from: int  # frames of this window's output kept: [keep_from, keep_to)
    keep_to: int


@register_extractor(section=SECTION, config=Wav2Vec2ExtractorConfig)
class Wav2Vec2Extractor(TorchExtractor):
    """``extract(samples, sampling_rate) -> (t, 768 * n_layers)`` frame embeddings (50 per second).

    Construction resolves the source, reads the config and loads the weights, so a
    bad source fails before any audio is read. The model is not pickled: worker
    processes load it again through the same code.
    """

    name = "wav2vec2"
    # a worker takes seconds to start (torch and the model): worth it for this much audio (benchmarks/RESULTS.md)
    audio_s_per_worker: ClassVar[float] = 60.0
    _transient = ("_model", "_norm")
    section: ClassVar[str] = SECTION
    #: the model types this extractor runs (``config.json``'s ``model_type``)
    families: ClassVar[tuple[str, ...]] = ("wav2vec2",)

    def __init__(self, config: Wav2Vec2ExtractorConfig) -> None:
        self.config = config
        self._read_source()
        self.receptive_field, self.hop = conv_geometry(self.hf_config)
        self.frames_per_second = self.sampling_rate / self.hop
        self._set_layers(int(self.hf_config.num_hidden_layers), int(self.hf_config.hidden_size))
        self._set_runtime()

    # -- set-up ---------------------------------------------------------------------------

    def _read_source(self) -> None:
        """Where the model comes from, its config (of one of :attr:`families`) and its preprocessing."""
        self.source = resolve_source(self.config.model, self.section)
        self.hf_config, self.config_source = load_hf_config(self.source, init=self.config.init, section=self.section)
        self.family = getattr(self.hf_config, "model_type", "wav2vec2")
        if self.family not in self.families:
            raise WeightsError(
                f"{self.source.describe()} is a '{self.family}' model, not {' or '.join(self.families)}. Point "
                f"{self.section}.model at such a checkpoint"
                + ("." if self.section != SECTION else ", or use embeddings.encoder, which runs any of "
                   "wav2vec2, hubert, wavlm, data2vec-audio and whisper.")
            )
        self.preprocessing = load_preprocessing(self.source, self.hf_config)
        self.sampling_rate = self.preprocessing["sampling_rate"]

    def _set_runtime(self) -> None:
        """Device, dtype, batching and workers; then the model is loaded."""
        self.device = resolve_device(self.config.device, self.section)
        self.compute_dtype = self._resolve_dtype(self.config.dtype)
        self.batch_s = self.config.batch_s or (_CUDA_BATCH_S if self.device.type == "cuda" else 0.0)
        self.shard_size = 256 if self.device.type == "cuda" else 8
        self.preferred_workers = preferred_workers(self.device)
        self._model: Any = None
        self._norm: Any = None
        self.num_parameters = 0
        self.load()

    def _kept(self, layers: Any) -> Any:
        """The transformer ``layers`` worth running: those after the deepest kept one cannot change it."""
        numeric = [layer for layer in self.layers if layer != "last"]
        if "last" not in self.layers and numeric and max(numeric) < len(layers):
            import torch

            return torch.nn.ModuleList(list(layers)[: max(numeric)])
        return layers

    def _set_layers(self, n_layers: int, layer_dim: int) -> None:
        """The layers kept (``layers`` param), their width, and the feature names."""
        config = self.config
        if config.layers == "last":
            self.layers: list[int | str] = ["last"]
        elif config.layers == "middle":
            self.layers = [max(1, n_layers // 2)]
        elif config.layers == "all":
            self.layers = list(range(n_layers + 1))
        else:
            too_deep = [i for i in config.layers if i > n_layers]
            if too_deep:
                raise ParamsError(
                    f"params key '{self.section}.layers' = {list(config.layers)} names layer(s) {too_deep}, but "
                    f"{self.source.describe()} has {n_layers} transformer layers (valid: 0..{n_layers})."
                )
            self.layers = list(config.layers)
        self.layer_dim = layer_dim
        self.dim = self.layer_dim * len(self.layers)
        self.feature_names = [f"{'last' if layer == 'last' else f'l{layer}'}_{i}"
                              for layer in self.layers for i in range(self.layer_dim)]
        self.frames_dtype = config.frames_dtype

    def _resolve_dtype(self, name: str) -> torch.dtype:
        import torch

        if name == "auto":
            if self.device.type != "cuda":
                return torch.bfloat16 if cpu_has_native_bfloat16() else torch.float32
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if name == "float16" and self.device.type == "cpu":
            raise ParamsError(
                f"params key '{self.section}.dtype' = float16 is not supported on CPU; use float32 or bfloat16."
            )
        return getattr(torch, name)

    def _load(self) -> None:
        model = build_model(self.source, self.hf_config, init=self.config.init, seed=self.config.seed,
                            section=self.section)
        self.num_parameters = int(sum(p.numel() for p in model.parameters()))
        model.encoder.layers = self._kept(model.encoder.layers)
        if getattr(self.hf_config, "feat_extract_norm", "layer") == "group":
            first = model.feature_extractor.conv_layers[0]
            norm = _group_norm_class()(first.layer_norm.num_groups, first.layer_norm.num_channels,
                                       eps=first.layer_norm.eps)
            norm.load_state_dict(first.layer_norm.state_dict())
            first.layer_norm = norm
            self._norm = norm
        self._model = model.to(self.device)
        positional = getattr(self._model.encoder.pos_conv_embed, "conv", None)  # data2vec-audio's has no weight norm
        if positional is not None:
            _bake_weight_norm(positional)

    def describe(self, manifest: Any = None) -> str:
        """One line for the stage log: which network, how many parameters, which layers, where."""
        return (f"{self.source.location} ({'pretrained' if self.config.init == 'pretrained' else 'random init'}, "
                f"{self.num_parameters / 1e6:.1f} M parameters), layers {self.layers}, "
                f"{self.device.type} {str(self.compute_dtype).replace('torch.', '')}")

    def meta(self) -> dict[str, Any]:
        import torch

        return {
            "feature_set": self.name,
            "params": to_dict(self.config),
            "model": self.source.location,
            "model_kind": self.source.kind,
            "family": self.family,
            "batching": "exact" if self.family in EXACT_BATCH_FAMILIES else "one utterance per pass",
            "pretrained": self.config.init == "pretrained",
            "config_source": self.config_source,
            "revision": getattr(self.hf_config, "_commit_hash", None),
            "architecture": {
                "hidden_size": self.layer_dim,
                "num_hidden_layers": int(self.hf_config.num_hidden_layers),
                "feat_extract_norm": getattr(self.hf_config, "feat_extract_norm", "layer"),
                "num_parameters": self.num_parameters,
            },
            "preprocessing": self.preprocessing,
            "layers": self.layers,
            "layer_dim": self.layer_dim,
            "feature_names": self.feature_names,
            "frames_per_second": self.frames_per_second,
            "sampling_rate": self.sampling_rate,
            "device": self.device.type,
            "compute_dtype": str(self.compute_dtype).replace("torch.", ""),
            "torch": torch.__version__.split("+")[0],
        }

    # -- extraction -----------------------------------------------------------------------

    def extract(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        """Frame embeddings of one mono signal.

        Parameters
        ----------
        samples : np.ndarray [shape=(n,)], n >= 1
        sampling_rate : int > 0
            Resampled to the model's rate (16 kHz) when different.

        Returns
        -------
        np.ndarray [shape=(t, layer_dim * n_layers), dtype=float32]
            ``t`` frames at 50 per second; clips under 25 ms are zero-padded to one frame.
        """
        samples = mono_signal(samples)
        return self.extract_batch([resample(samples, orig_sr=sampling_rate, target_sr=self.sampling_rate)])[0]

    def model_input(self, samples: np.ndarray) -> np.ndarray:
        """What the model is fed: normalised as its feature extractor says, padded to one frame."""
        x = mono_signal(samples)
        if self.config.trim_db is not None:
            x = trim_silent_ends(x, top_db=self.config.trim_db, frame=self.sampling_rate // 100)
        if self.preprocessing["do_normalize"]:
            x = (x - x.mean()) / np.sqrt(x.var() + _NORM_EPS)
        if len(x) < self.receptive_field:
            x = np.pad(x, (0, self.receptive_field - len(x)))
        return x.astype(np.float32, copy=False)

    def _windows(self, index: int, n: int) -> list[_Window]:
        total = num_frames(n, self.hf_config)
        max_frames = num_frames(int(self.config.chunk_s * self.sampling_rate), self.hf_config)
        if total <= max_frames:
            return [_Window(index, 0, n, 0, total)]
        context = int(round(self.config.chunk_overlap_s * self.frames_per_second))
        core = max_frames - 2 * context
        windows = []
        for first in range(0, total, core):
            last = min(total, first + core)
            lo, hi = max(0, first - context), min(total, last + context)
            windows.append(_Window(index, lo * self.hop, (hi - 1) * self.hop + self.receptive_field,
                                   first - lo, last - lo))
        return windows

    def extract_batch(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frame embeddings of several signals at the model's sampling rate.

        Long signals are cut into overlapping windows; windows are sorted by length
        and packed into padded batches of at most ``batch_s`` seconds. Each output is
        what the signal gives alone (to float rounding).
        """
        prepared = [self.model_input(s) for s in signals]
        windows = [w for i, x in enumerate(prepared) for w in self._windows(i, len(x))]
        windows.sort(key=lambda w: (w.stop - w.start, w.utterance, w.start))
        pieces: list[dict[int, np.ndarray]] = [{} for _ in prepared]  # per utterance: start -> frames
        stats: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # data2vec-audio's positional convolutions are stacked: padding leaks into the frames beside it, so its
        # utterances run one per pass
        budget = int(self.batch_s * self.sampling_rate) if self.family in EXACT_BATCH_FAMILIES else 0
        batch: list[_Window] = []
        for window in windows + [None]:  # type: ignore[list-item]
            if window is not None and (not batch or (len(batch) + 1) * (window.stop - window.start) <= budget):
                batch.append(window)
                continue
            for done, frames in zip(batch, self._forward(batch, prepared, stats)):
                pieces[done.utterance][done.start] = frames
            batch = [window] if window is not None else []
        return [np.concatenate([frames for _, frames in sorted(p.items())]) if len(p) > 1 else next(iter(p.values()))
                for p in pieces]

    def _first_conv_stats(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        conv = self._model.feature_extractor.conv_layers[0].conv
        weight = conv.weight.detach().float().cpu().numpy()[:, 0, :]
        bias = None if conv.bias is None else conv.bias.detach().float().cpu().numpy()
        return first_conv_stats(samples, weight, bias, conv.stride[0])

    def _forward(self, batch: list[_Window], prepared: list[np.ndarray],
                 stats: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Run one padded batch; ``stats`` caches first-convolution statistics per utterance."""
        import torch

        lengths = np.array([w.stop - w.start for w in batch])
        inputs = np.zeros((len(batch), lengths.max()), dtype=np.float32)
        for row, w in enumerate(batch):
            inputs[row, : lengths[row]] = prepared[w.utterance][w.start:w.stop]
        mask = None  # one unpadded window needs none
        if len(batch) > 1:
            mask = torch.from_numpy((np.arange(lengths.max()) < lengths[:, None]).astype(np.int64)).to(self.device)
        # one whole utterance alone: the model's own GroupNorm is already exact (and fused)
        alone = len(batch) == 1 and batch[0].start == 0 and batch[0].stop == len(prepared[batch[0].utterance])
        if self._norm is not None and not alone:
            for w in batch:
                if w.utterance not in stats:
                    stats[w.utterance] = self._first_conv_stats(prepared[w.utterance])
            means = np.stack([stats[w.utterance][0] for w in batch])
            variances = np.stack([stats[w.utterance][1] for w in batch])
            self._norm.stats = (torch.from_numpy(means).float().to(self.device),
                                torch.from_numpy(variances).float().to(self.device))
        want_hidden = any(layer != "last" for layer in self.layers)
        try:
            with torch.inference_mode(), torch.autocast(
                device_type=self.device.type, dtype=self.compute_dtype,
                enabled=self.compute_dtype != torch.float32,
            ):
                output = self._model(
                    torch.from_numpy(inputs).to(self.device),
                    attention_mask=mask,
                    output_hidden_states=want_hidden,
                )
        finally:
            if self._norm is not None:
                self._norm.stats = None
        hidden = output.hidden_states if want_hidden else None
        if want_hidden and len(hidden) != len(self._model.encoder.layers) + 1:
            raise VocalabError(
                f"expected {len(self._model.encoder.layers) + 1} hidden states from transformers, got "
                f"{len(hidden)}; this transformers version is not supported (see requirements.txt)."
            )
        selected = [output.last_hidden_state if layer == "last" else hidden[layer] for layer in self.layers]
        stacked = torch.cat(selected, dim=-1).float().cpu().numpy()
        result = []
        for row, w in enumerate(batch):
            valid = num_frames(w.stop - w.start, self.hf_config)
            if valid < w.keep_to:
                raise VocalabError(f"window of {w.stop - w.start} samples gave {valid} frames, "
                                   f"expected {w.keep_to}: unsupported convolution geometry.")
            result.append(stacked[row, w.keep_from:w.keep_to])
        return result
