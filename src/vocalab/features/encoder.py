"""Any transformers speech encoder as a feature set: wav2vec 2.0, HuBERT, WavLM, data2vec-audio, Whisper's encoder.

``embeddings.encoder.model`` is a hub id, a local directory written by ``save_pretrained``
or a weights file with its ``config.json``, loaded through ``AutoConfig``,
``AutoFeatureExtractor`` and ``AutoModel`` as :mod:`.wav2vec2_source` loads wav2vec 2.0.
The family is read from the config's ``model_type`` (``family: auto``) or named, and
checked. A checkpoint fine-tuned with a head (an emotion classifier such as audEERING's)
gives its encoder's hidden states; the head is not loaded.

- wav2vec 2.0, HuBERT, WavLM, data2vec-audio share one convolutional front end and a
  transformer: they run through :class:`~vocalab.features.wav2vec2.Wav2Vec2Extractor`'s
  exact batching (per-utterance statistics for a group-norm front end; data2vec-audio's
  layer norm needs none), chunking of long files and ``dtype`` handling.
- Whisper's encoder reads a log-mel spectrogram of a fixed 30 s window (its feature
  extractor's ``chunk_length``). A recording is cut into such windows, each zero-padded as
  Whisper pads it, and the frames (50 per second) that cover audio are kept. Every window
  has the same shape and no row of a batch sees another, so batching is exact. The decoder
  is dropped.

Guidance, from published speaker-disjoint results (README, "Models users bring").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Sequence

import numpy as np

from vocalab.audio import mono_signal, resample
from vocalab.errors import VocalabError, WeightsError
from vocalab.features.registry import register_extractor
from vocalab.features.wav2vec2 import Wav2Vec2Extractor, Wav2Vec2ExtractorConfig
from vocalab.features.wav2vec2_source import build_model, load_hf_config, resolve_source
from vocalab.params import to_dict

SECTION = "embeddings.encoder"
WAV2VEC2_LIKE = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
FAMILIES = WAV2VEC2_LIKE + ("whisper",)
DEFAULT_MODEL = "microsoft/wavlm-base-plus"


@dataclass(frozen=True)
class EncoderConfig(Wav2Vec2ExtractorConfig):
    """``embeddings.encoder``: the fields of ``embeddings.wav2vec2``, and the family.

    model : str     hub id, local directory (config.json + weights) or weights file, of any family below
    family : str    ``auto`` (the config's ``model_type``) or one of wav2vec2, hubert, wavlm,
                    data2vec-audio, whisper: the checkpoint must be of that family
    chunk_s and chunk_overlap_s do not apply to whisper, whose window is its own 30 s.
    """

    model: str = DEFAULT_MODEL
    family: Literal["auto", "wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper"] = "auto"


def _family(config: EncoderConfig) -> str:
    source = resolve_source(config.model, SECTION)
    hf_config, _ = load_hf_config(source, init=config.init, section=SECTION)
    return str(getattr(hf_config, "model_type", ""))


@register_extractor(section=SECTION, config=EncoderConfig)
class EncoderExtractor(Wav2Vec2Extractor):
    """``extract(samples, sampling_rate) -> (t, hidden * n_layers)``: frame embeddings of any supported encoder.

    Building one for a Whisper checkpoint gives a :class:`WhisperEncoderExtractor`.
    """

    name = "encoder"
    section: ClassVar[str] = SECTION
    families: ClassVar[tuple[str, ...]] = WAV2VEC2_LIKE

    def __new__(cls, config: EncoderConfig | None = None) -> "EncoderExtractor":
        if cls is EncoderExtractor and config is not None and _family(config) == "whisper":
            cls = WhisperEncoderExtractor
        return object.__new__(cls)

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__(config)
        self._check_family()

    def _check_family(self) -> None:
        if self.config.family not in ("auto", self.family):
            raise WeightsError(f"params key '{SECTION}.family' = '{self.config.family}', but "
                               f"{self.source.describe()} is a '{self.family}' model. Set family: auto, or point "
                               f"model at a {self.config.family} checkpoint.")


class WhisperEncoderExtractor(EncoderExtractor):
    """Whisper's encoder: 30 s log-mel windows, the frames that cover audio kept (50 per second)."""

    families: ClassVar[tuple[str, ...]] = ("whisper",)
    _transient = ("_model", "_norm", "_mel")

    def __init__(self, config: EncoderConfig) -> None:  # noqa: super-init-not-called (another front end)
        self.config = config
        self._read_source()
        self._check_family()
        self.hop = self.preprocessing["hop_length"] * 2  # the encoder's second convolution has stride 2
        self.receptive_field = self.hop
        self.window = int(self.hf_config.max_source_positions) * self.hop
        if self.preprocessing["chunk_length"] * self.sampling_rate != self.window:
            raise WeightsError(
                f"{self.source.describe()}: its feature extractor's chunk_length "
                f"({self.preprocessing['chunk_length']} s) does not fill the encoder's "
                f"{self.hf_config.max_source_positions} positions ({self.window / self.sampling_rate:g} s). Use the "
                f"preprocessor_config.json saved with the model.")
        self.frames_per_second = self.sampling_rate / self.hop
        self._set_layers(int(self.hf_config.encoder_layers), int(self.hf_config.d_model))
        self._mel: Any = None
        self._set_runtime()

    def _load(self) -> None:
        from transformers import WhisperFeatureExtractor

        model = build_model(self.source, self.hf_config, init=self.config.init, seed=self.config.seed,
                            section=SECTION)
        encoder = getattr(model, "encoder", None) or model.get_encoder()
        self.num_parameters = int(sum(p.numel() for p in encoder.parameters()))
        encoder.layers = self._kept(encoder.layers)
        self._model = encoder.to(self.device).eval()
        settings = self.preprocessing
        self._mel = WhisperFeatureExtractor(feature_size=settings["feature_size"], sampling_rate=self.sampling_rate,
                                            hop_length=settings["hop_length"], chunk_length=settings["chunk_length"],
                                            n_fft=settings["n_fft"])

    def meta(self) -> dict[str, Any]:
        meta = super().meta()
        meta["architecture"] = {"d_model": self.layer_dim, "encoder_layers": int(self.hf_config.encoder_layers),
                                "num_mel_bins": int(self.hf_config.num_mel_bins),
                                "window_s": self.window / self.sampling_rate, "num_parameters": self.num_parameters,
                                "encoder_only": True}
        meta["params"] = to_dict(self.config)
        return meta

    def model_input(self, samples: np.ndarray) -> np.ndarray:
        return np.asarray(mono_signal(samples), dtype=np.float32)

    def extract(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        return self.extract_batch([resample(mono_signal(samples), orig_sr=sampling_rate,
                                            target_sr=self.sampling_rate)])[0]

    def extract_batch(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frame embeddings of several signals at 16 kHz: every 30 s window of every signal, batched."""
        pieces = [(i, x[start:start + self.window]) for i, x in enumerate(self.model_input(s) for s in signals)
                  for start in range(0, max(1, len(x)), self.window)]
        per_pass = max(1, int(self.batch_s * self.sampling_rate) // self.window)
        frames: list[list[np.ndarray]] = [[] for _ in signals]
        for begin in range(0, len(pieces), per_pass):
            batch = pieces[begin:begin + per_pass]
            for (i, piece), out in zip(batch, self._forward_windows([p for _, p in batch])):
                frames[i].append(out[: max(1, -(-len(piece) // self.hop))])
        return [np.concatenate(f) if len(f) > 1 else f[0] for f in frames]

    def _forward_windows(self, pieces: list[np.ndarray]) -> np.ndarray:
        import torch

        features = self._mel(pieces, sampling_rate=self.sampling_rate, return_tensors="np",
                             padding="max_length")["input_features"]
        want_hidden = any(layer != "last" for layer in self.layers)
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=self.compute_dtype,
                                                    enabled=self.compute_dtype != torch.float32):
            output = self._model(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(self.device),
                                 output_hidden_states=want_hidden)
        hidden = output.hidden_states if want_hidden else None
        if want_hidden and len(hidden) != len(self._model.layers) + 1:
            raise VocalabError(f"expected {len(self._model.layers) + 1} hidden states from the Whisper encoder, got "
                               f"{len(hidden)}; this transformers version is not supported (see requirements.txt).")
        selected = [output.last_hidden_state if layer == "last" else hidden[layer] for layer in self.layers]
        return torch.cat(selected, dim=-1).float().cpu().numpy()

