"""Fine-tuning a pretrained speech encoder end to end (``train.model: finetune``).

The encoder (wav2vec 2.0, HuBERT, WavLM or data2vec-audio, loaded as ``embeddings.encoder``
loads it: hub id, local directory or weights file) reads the ``waveform`` set's samples;
its last hidden states are averaged over the real frames and a small dense head
classifies them. Training is the sequence heads' (:func:`vocalab.models.sequence.fit`):
seeded, random crops of ``train.sequence.waveform_crop`` samples, class-balanced loss, the
epoch with the best UAR on validation speakers kept. The encoder learns at
``train.finetune.learning_rate``, the head at ``train.sequence.learning_rate``; the
convolutional front end stays fixed unless ``freeze_feature_encoder: false``.

What ``model.json`` records of the encoder is its ``transformers`` config, so a saved
model is rebuilt with no download and its state dict (``weights_only``) loaded into it.
It is meant for CUDA; on a CPU only small configurations train in reasonable time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vocalab.errors import VocalabError
from vocalab.features.wav2vec2_source import conv_geometry

SECTION = "train.finetune"
#: the families whose encoders read raw samples (Whisper reads log-mel windows: use embeddings.encoder)
FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")


def load_encoder(config: Any, seed: int) -> tuple[dict[str, Any], nn.Module]:
    """The encoder of ``train.finetune`` (``FinetuneConfig``): what the head needs to build it again,
    ``{config: the transformers config as a dict, do_normalize, source, freeze_feature_encoder, ...}`` (for
    ``model.json``), and the encoder with its weights, loaded (``init: pretrained``) or seeded random."""
    from vocalab.features.wav2vec2_source import build_model, load_hf_config, load_preprocessing, resolve_source

    source = resolve_source(config.model, SECTION)
    hf_config, _ = load_hf_config(source, init=config.init, section=SECTION)
    family = getattr(hf_config, "model_type", "")
    if family not in FAMILIES:
        raise VocalabError(f"params key '{SECTION}.model' is a {family!r} model; fine-tuning reads raw samples "
                           f"with {', '.join(FAMILIES)}. Whisper's encoder is available as the encoder feature "
                           f"set (embeddings.encoder).")
    preprocessing = load_preprocessing(source, hf_config)
    record = {"config": hf_config.to_dict(), "do_normalize": preprocessing["do_normalize"],
              "sampling_rate": preprocessing["sampling_rate"], "source": source.describe(), "init": config.init,
              "freeze_feature_encoder": config.freeze_feature_encoder, "learning_rate": config.learning_rate}
    return record, build_model(source, hf_config, init=config.init, seed=seed, section=SECTION)


class FinetuneHead(nn.Module):
    """Encoder -> mean over real frames -> dense -> classes. Input ``(B, T, 1)`` samples and their mask."""

    def __init__(self, dim: int, n_classes: int, hidden: int, dropout: float, *, config: dict[str, Any],
                 do_normalize: bool = True, freeze_feature_encoder: bool = True, learning_rate: float = 5e-5,
                 **_: Any) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if dim != 1:
            raise VocalabError(f"train.model: finetune reads a waveform store (one value per sample), not "
                               f"{dim}-dimensional frames. Train it on the waveform set (waveform.sample_rate: "
                               f"16000): train.models: {{waveform: finetune}}.")
        settings = dict(config)
        hf_config = AutoConfig.for_model(settings.pop("model_type"), **settings)
        self.encoder = AutoModel.from_config(hf_config)
        self.do_normalize, self.encoder_lr = do_normalize, learning_rate
        # group-normalised front ends (wav2vec2-base) were trained on zero padding without a mask
        self.pass_mask = getattr(hf_config, "feat_extract_norm", "layer") == "layer"
        # SpecAugment's time masks (training only) need a clip of twice their length: shorter ones are padded
        receptive_field, hop = conv_geometry(hf_config)
        masks = int(getattr(hf_config, "mask_time_length", 0)) if getattr(hf_config, "apply_spec_augment", False) else 0
        self.shortest = receptive_field + hop * max(0, 2 * masks - 1)
        if freeze_feature_encoder:
            for parameter in self.encoder.feature_extractor.parameters():
                parameter.requires_grad = False
        self.classify = nn.Sequential(nn.Dropout(dropout), nn.Linear(hf_config.hidden_size, hidden), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def parameter_groups(self, learning_rate: float) -> list[dict[str, Any]]:
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        return [{"params": encoder, "lr": self.encoder_lr},
                {"params": list(self.classify.parameters()), "lr": learning_rate}]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[1] < self.shortest:  # zeros after the clip, outside its mask
            pad = self.shortest - x.shape[1]
            x, mask = nn.functional.pad(x, (0, 0, 0, pad)), nn.functional.pad(mask, (0, pad))
        wave, real = x[..., 0] * mask, mask.float()
        if self.do_normalize:  # each clip to zero mean and unit variance over its real samples
            n = real.sum(1, keepdim=True).clamp_min(1.0)
            mean = wave.sum(1, keepdim=True) / n
            var = (((wave - mean) * real) ** 2).sum(1, keepdim=True) / n
            wave = (wave - mean) / torch.sqrt(var + 1e-7) * real
        hidden = self.encoder(wave, attention_mask=mask.long() if self.pass_mask else None).last_hidden_state
        lengths = self.encoder._get_feat_extract_output_lengths(mask.sum(1))
        keep = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]).float()
        pooled = (hidden * keep.unsqueeze(-1)).sum(1) / keep.sum(1, keepdim=True).clamp_min(1.0)
        return self.classify(pooled)
