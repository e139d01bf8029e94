"""A ready-made audio-classification checkpoint's class probabilities, as a feature set (``checkpoint``).

``embeddings.checkpoint.model`` is a hub id or a local directory written by
``save_pretrained``: an ``AutoModelForAudioClassification`` (an emotion, genre or accent
classifier) with its ``AutoFeatureExtractor``. Each clip goes through them as
``transformers.pipeline("audio-classification", top_k=None)`` runs a file: the feature
extractor at the model's rate, the model, a softmax over its labels (tested against the
pipeline itself). A recording longer than ``chunk_s`` is classified in windows of that
length and the probabilities averaged by window length, so memory stays bounded.

The store's pooled row is the probabilities, named by the checkpoint's labels; its frames
are each window's. ``train.model: checkpoint`` (:mod:`vocalab.models.checkpoint`) maps
those labels to the corpus's and scores them on held-out speakers with no training; any
pooled model can also learn from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from vocalab.audio import mono_signal, resample
from vocalab.errors import WeightsError, load_failure
from vocalab.features.registry import register_extractor
from vocalab.features.torch_runtime import TorchExtractor, preferred_workers, resolve_device
from vocalab.features.wav2vec2_source import build_model, load_hf_config, resolve_source, saved_feature_extractor
from vocalab.params import bounded, check_device_param, to_dict

SECTION = "embeddings.checkpoint"
#: SUPERB's emotion-recognition checkpoint (IEMOCAP; labels neu, hap, ang, sad)
DEFAULT_MODEL = "superb/wav2vec2-base-superb-er"


@dataclass(frozen=True)
class CheckpointExtractorConfig:
    """``embeddings.checkpoint``: the ready-made classifier and how it runs.

    model : str     hub id or local directory (config.json, weights, preprocessor_config.json)
    device : str    auto (CUDA when present) | cpu | cuda | cuda:N
    chunk_s : float longer recordings are classified in windows of this length, probabilities averaged
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    chunk_s: float = bounded(30.0, ge=1.0, le=3600.0)

    def check(self, section: str) -> None:
        check_device_param(self.device, section)


@register_extractor(section=SECTION, config=CheckpointExtractorConfig)
class CheckpointExtractor(TorchExtractor):
    """``extract(samples, sampling_rate) -> (window probabilities [shape=(w, n_labels)], mean [shape=(n_labels,)])``."""

    name = "checkpoint"
    audio_s_per_worker: ClassVar[float] = 60.0
    _transient = ("_model", "_features")

    def __init__(self, config: CheckpointExtractorConfig) -> None:
        self.config = config
        self.source = resolve_source(config.model, SECTION)
        if self.source.kind == "file":
            raise WeightsError(f"params key '{SECTION}.model' = '{config.model}' is a weights file; a ready-made "
                               f"classifier is a directory written by save_pretrained (config.json with its labels, "
                               f"weights, preprocessor_config.json) or a hub id.")
        self.hf_config, self.config_source = load_hf_config(self.source, init="pretrained", section=SECTION)
        architectures = getattr(self.hf_config, "architectures", None) or []
        if architectures and not any(a.endswith(("ForSequenceClassification", "ForAudioClassification"))
                                     for a in architectures):
            raise WeightsError(f"{self.source.describe()} is not an audio classifier: its config.json names "
                               f"{architectures}, with no classification head or labels. Point {SECTION}.model at "
                               f"a checkpoint fine-tuned for audio classification, or extract this network's "
                               f"hidden states with the encoder set (embeddings.encoder).")
        id2label = getattr(self.hf_config, "id2label", None) or {}
        self.feature_names = [str(id2label[k]) for k in sorted(id2label, key=int)]
        if len(self.feature_names) < 2 or len(set(self.feature_names)) != len(self.feature_names):
            raise WeightsError(f"{self.source.describe()} names labels {self.feature_names} in its config.json "
                               f"(id2label): an audio classifier needs at least two distinct ones.")
        self.dim = len(self.feature_names)
        self.device = resolve_device(config.device, SECTION)
        self.preferred_workers = preferred_workers(self.device)
        self.shard_size = 8
        self._model: Any = None
        self._features: Any = None
        self.load()
        self.sampling_rate = int(self._features.sampling_rate)
        self.frames_per_second = 1.0 / config.chunk_s

    def _load(self) -> None:
        from transformers import AutoModelForAudioClassification

        try:
            self._features, _ = saved_feature_extractor(self.source)
        except (OSError, ValueError, KeyError) as err:
            raise WeightsError(f"{self.source.describe()} has no feature extractor settings that load "
                               f"({load_failure(err)}). A checkpoint saved for pipeline('audio-classification') holds "
                               f"preprocessor_config.json; save it with feature_extractor.save_pretrained.") from None
        model = build_model(self.source, self.hf_config, init="pretrained", seed=0, section=SECTION,
                            model_class=AutoModelForAudioClassification)
        self.num_parameters = int(sum(p.numel() for p in model.parameters()))
        self._model = model.to(self.device).eval()

    def describe(self, manifest: Any = None) -> str:
        return (f"{self.source.location} ({self.hf_config.model_type}, {self.num_parameters / 1e6:.1f} M parameters, "
                f"labels {', '.join(self.feature_names)}), {self.device.type}")

    def meta(self) -> dict[str, Any]:
        import torch

        return {
            "feature_set": self.name, "params": to_dict(self.config), "model": self.source.location,
            "model_kind": self.source.kind, "family": self.hf_config.model_type, "pretrained": True,
            "config_source": self.config_source, "revision": getattr(self.hf_config, "_commit_hash", None),
            "feature_names": self.feature_names, "pooled": "functionals", "pooled_names": self.feature_names,
            "frames_per_second": self.frames_per_second, "sampling_rate": self.sampling_rate,
            "definition": "class probabilities of an audio-classification checkpoint (softmax over its labels), "
                          "as pipeline('audio-classification') gives them; windows averaged",
            "device": self.device.type, "torch": torch.__version__.split("+")[0],
        }

    def probabilities(self, window: np.ndarray) -> np.ndarray:
        """The checkpoint's softmax over its labels for one window at ``sampling_rate``."""
        import torch

        inputs = self._features(window, sampling_rate=self.sampling_rate, return_tensors="pt")
        with torch.inference_mode():
            logits = self._model(**{k: v.to(self.device) for k, v in inputs.items()}).logits
        return torch.softmax(logits.float(), dim=-1)[0].cpu().numpy()

    def extract(self, samples: np.ndarray, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
        y = resample(mono_signal(samples), orig_sr=sampling_rate, target_sr=self.sampling_rate).astype(np.float32)
        step = int(round(self.config.chunk_s * self.sampling_rate))
        windows = [y[start:start + step] for start in range(0, max(1, len(y)), step)]
        frames = np.stack([self.probabilities(w) for w in windows]).astype(np.float32)
        weights = np.array([len(w) for w in windows], dtype=np.float64)
        return frames, (frames.astype(np.float64) * weights[:, None]).sum(axis=0) / weights.sum()

