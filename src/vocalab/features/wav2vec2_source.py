"""Where a speech encoder comes from: a hub id, a local directory or a weights file.

The same code loads wav2vec 2.0 (``embeddings.wav2vec2``) and every family of
``embeddings.encoder`` (HuBERT, WavLM, data2vec-audio, the Whisper encoder), through
``AutoConfig``, ``AutoFeatureExtractor`` and ``AutoModel``; a checkpoint that carries a
head (an emotion classifier) gives its encoder, the head's weights left out.

Weights are read by ``transformers`` (``from_pretrained``) or, for a bare weights
file, with ``safetensors`` / ``torch.load(weights_only=True)`` so a file cannot run
code. Nothing falls back silently: weights that cannot be loaded, or that leave
part of the model uninitialised, stop with a message saying what was tried and
how to provide them. ``init: random`` builds the architecture from its config,
seeded, and never downloads weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vocalab.errors import WeightsError, load_failure

BASE_MODEL_ID = "facebook/wav2vec2-base"
#: hub ids whose architecture is their family's config defaults: ``init: random`` builds them offline
DEFAULT_ARCHITECTURES = {BASE_MODEL_ID: "wav2vec2", "facebook/hubert-base-ls960": "hubert",
                         "microsoft/wavlm-base-plus": "wavlm", "facebook/data2vec-audio-base": "data2vec-audio",
                         "openai/whisper-tiny": "whisper"}
SECTION = "embeddings.wav2vec2"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class ModelSource:
    """A resolved ``model`` value: a hub id, a local directory, or a weights file."""

    kind: Literal["hub", "directory", "file"]
    location: str

    @property
    def config_dir(self) -> str:
        return str(Path(self.location).parent) if self.kind == "file" else self.location

    def describe(self) -> str:
        return {"hub": "hub id", "directory": "local directory", "file": "weights file"}[self.kind] + \
            f" '{self.location}'"


def resolve_source(model: str, section: str = SECTION) -> ModelSource:
    """Decide whether ``model`` is a local directory, a weights file or a hub id."""
    path = Path(model).expanduser()
    if path.is_dir():
        return ModelSource("directory", str(path))
    if path.is_file():
        if path.suffix not in _WEIGHT_SUFFIXES:
            raise WeightsError(
                f"params key '{section}.model' = '{model}' is a file but not a weights file "
                f"({', '.join(_WEIGHT_SUFFIXES)}). Point it at a model directory, a weights file or a hub id."
            )
        return ModelSource("file", str(path))
    looks_like_path = (
        model.startswith(("/", ".", "~")) or model.endswith(_WEIGHT_SUFFIXES) or model.count("/") > 1
        or "\\" in model
    )
    if looks_like_path:
        raise WeightsError(
            f"params key '{section}.model' = '{model}' looks like a path but nothing exists there. "
            f"Fix the path, or give a hub id such as '{BASE_MODEL_ID}'."
        )
    return ModelSource("hub", model)


def conv_geometry(hf_config: Any) -> tuple[int, int]:
    """``(receptive_field, hop)`` in samples of a wav2vec 2.0-style convolutional feature encoder."""
    receptive, jump = 1, 1
    for kernel, stride in zip(hf_config.conv_kernel, hf_config.conv_stride):
        receptive += (kernel - 1) * jump
        jump *= stride
    return receptive, jump


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _how_to_provide(source: ModelSource, section: str = SECTION) -> str:
    return (
        "Provide weights in one of these ways: (1) allow hub access (unset HF_HUB_OFFLINE, network to "
        "huggingface.co); (2) fill the local cache on a connected machine with "
        f"`hf download {source.location if source.kind == 'hub' else BASE_MODEL_ID}` and copy it to "
        f"this machine's HF_HOME; (3) set {section}.model to a local directory holding config.json "
        f"and model.safetensors (written by save_pretrained). Or set {section}.init: random to run "
        "the same architecture untrained."
    )


def load_hf_config(source: ModelSource, *, init: str, section: str = SECTION) -> tuple[Any, str]:
    """The ``transformers`` config of ``source`` (``AutoConfig``: its class follows ``model_type``) and where
    it came from.

    With ``init: random`` and the wav2vec 2.0 base hub id, no download is tried: the base
    architecture is ``Wav2Vec2Config()``'s defaults. A config that was cached earlier is still preferred.
    """
    from transformers import AutoConfig

    if source.kind != "hub":
        config_file = Path(source.config_dir) / "config.json"
        if not config_file.is_file():
            raise WeightsError(
                f"{source.describe()} has no config.json at '{config_file}'. Save the model with "
                f"save_pretrained (it writes config.json and the weights), or put the model's config.json there."
            )
        try:
            return AutoConfig.from_pretrained(source.config_dir), str(config_file)
        except (OSError, ValueError, KeyError) as err:
            raise WeightsError(f"cannot read '{config_file}' as a transformers model config: "
                               f"{load_failure(err)}") from err
    try:
        return AutoConfig.from_pretrained(source.location, local_files_only=True), "hf-cache"
    except (OSError, ValueError, KeyError):
        pass
    if init == "random" and source.location in DEFAULT_ARCHITECTURES:
        family = DEFAULT_ARCHITECTURES[source.location]
        config = AutoConfig.for_model(family)
        return config, f"{type(config).__name__}() defaults (the {source.location} architecture)"
    if _offline():
        raise WeightsError(
            f"no config for {source.describe()} in the local Hugging Face cache, and HF_HUB_OFFLINE is set. "
            + _how_to_provide(source, section)
        )
    try:
        return AutoConfig.from_pretrained(source.location), "hub"
    except (OSError, ValueError, KeyError) as err:
        raise WeightsError(f"cannot get the config of {source.describe()}: {err}. "
                           + _how_to_provide(source, section)) from err


def saved_feature_extractor(source: ModelSource) -> tuple[Any, str]:
    """The ``AutoFeatureExtractor`` saved with ``source`` (the hub cache, or its ``preprocessor_config.json``)
    and where it came from; OSError, ValueError or KeyError when there is none that loads."""
    from transformers import AutoFeatureExtractor

    if source.kind == "hub":
        return AutoFeatureExtractor.from_pretrained(source.location, local_files_only=True), "hf-cache"
    saved = Path(source.config_dir) / "preprocessor_config.json"
    if not saved.is_file():
        raise OSError(f"no {saved.name} in '{source.config_dir}'")
    return AutoFeatureExtractor.from_pretrained(source.config_dir), str(saved)


def load_preprocessing(source: ModelSource, hf_config: Any) -> dict[str, Any]:
    """The feature extractor's settings for ``source`` (``AutoFeatureExtractor``), and where they came from.

    Falls back to the family's feature extractor's defaults when the source has no
    ``preprocessor_config.json``. For wav2vec 2.0-style encoders: normalisation and sampling
    rate; for Whisper also its log-mel settings.
    """
    from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    whisper = getattr(hf_config, "model_type", "") == "whisper"
    try:
        extractor, origin = saved_feature_extractor(source)
    except (OSError, ValueError, KeyError):
        extractor = None
    default = WhisperFeatureExtractor if whisper else Wav2Vec2FeatureExtractor
    if extractor is None or not isinstance(extractor, default):
        extractor = (WhisperFeatureExtractor(feature_size=int(hf_config.num_mel_bins)) if whisper
                     else Wav2Vec2FeatureExtractor())
        origin = f"{default.__name__}() defaults"
    if whisper:
        return {"feature_size": int(extractor.feature_size), "n_fft": int(extractor.n_fft),
                "hop_length": int(extractor.hop_length), "chunk_length": int(extractor.chunk_length),
                "sampling_rate": int(extractor.sampling_rate), "source": origin}
    return {
        "do_normalize": bool(extractor.do_normalize),
        "sampling_rate": int(extractor.sampling_rate),
        "source": origin,
    }


def _load_state_dict_file(path: str) -> dict[str, Any]:
    import torch

    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except (OSError, SafetensorError) as err:
            raise WeightsError(f"weights file '{path}' is not a readable safetensors file ({err}). "
                               f"Download or export it again.") from err
    try:
        # weights_only: a weights file cannot run code when it is read
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's own text suggests weights_only=False: never pass that advice on
        raise WeightsError(
            f"weights file '{path}' is not a plain state dict of tensors ({type(err).__name__}): it is corrupt, "
            f"or holds objects that would run code when loaded, which vocalab refuses. Export the weights with "
            f"torch.save(model.state_dict(), path) or as .safetensors from a source you trust."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"weights file '{path}' does not hold a state dict (got {type(state).__name__}).")
    return state


def build_model(source: ModelSource, hf_config: Any, *, init: str, seed: int, section: str = SECTION,
                model_class: Any = None) -> Any:
    """The encoder ``AutoModel`` builds for ``hf_config``, in eval mode: loaded from ``source``, or seeded
    random weights. ``model_class`` (e.g. ``AutoModelForAudioClassification``) builds a model with its head."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModel

    encoder_only = model_class is None
    AutoModel = AutoModel if encoder_only else model_class  # noqa: N806 (the class chosen)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-worker weight-loading bars would drown the real one
    family = getattr(hf_config, "model_type", "wav2vec2")
    if init == "random":
        torch.manual_seed(seed)
        return AutoModel.from_config(hf_config).eval()
    if source.kind == "file":
        model = AutoModel.from_config(hf_config)
        expected = model.state_dict()
        state = _load_state_dict_file(source.location)
        prefix = model.base_model_prefix + "."  # an encoder's weights saved inside a model with a head
        if encoder_only:
            state = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
        kept = {k: v for k, v in state.items() if k in expected}
        missing = sorted(set(expected) - set(kept))
        shape_errors = sorted(k for k, v in kept.items() if tuple(v.shape) != tuple(expected[k].shape))
        if missing or shape_errors:
            problem = f"lacks {len(missing)} weight(s), e.g. {missing[:3]}" if missing else \
                f"has weights of the wrong shape for its config.json, e.g. {shape_errors[:3]}"
            raise WeightsError(
                f"{source.describe()} {problem}. It must be a Hugging Face {family} state dict matching "
                f"the config.json beside it (fairseq checkpoints need converting first)."
            )
        model.load_state_dict(kept, strict=False)
        return model.eval()
    kwargs: dict[str, Any] = {"output_loading_info": True}
    if source.kind == "hub" and _offline():
        kwargs["local_files_only"] = True
    import pickle

    try:
        model, info = AutoModel.from_pretrained(source.location, **kwargs)
    except pickle.UnpicklingError as err:  # a .bin that would run code: refused by weights_only loading
        raise WeightsError(
            f"init: pretrained, but the weights of {source.describe()} hold objects other than tensors, which "
            f"could run code when loaded; vocalab refuses them. Use a model.safetensors file, or weights saved "
            f"as a plain state dict."
        ) from err
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise WeightsError(
            f"init: pretrained, but the weights of {source.describe()} could not be loaded "
            f"({load_failure(err)}). " + _how_to_provide(source, section)
        ) from err
    missing = sorted(info.get("missing_keys") or [])
    mismatched = info.get("mismatched_keys") or []
    if missing or mismatched:
        raise WeightsError(
            f"init: pretrained, but {source.describe()} lacks {len(missing)} weight(s) (e.g. {missing[:3]}) "
            f"or has {len(mismatched)} of the wrong shape, which would be left random. "
            f"Use a complete {family} checkpoint, or init: random."
        )
    return model.eval()
