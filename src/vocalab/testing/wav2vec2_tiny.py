"""A small random wav2vec 2.0, saved as ``save_pretrained`` saves a real one.

It loads through the same code as a downloaded model (``embeddings.wav2vec2.model`` set
to its folder), so the tests exercise the real loading path without a model hub, and
``benchmarks/scale.py`` runs the whole pipeline on a large corpus in minutes instead of
the hours Base would take on a CPU. Its features mean nothing. The extraction stages do
not import this module.
"""

from __future__ import annotations

from pathlib import Path


def save_tiny_wav2vec2(directory: Path, *, seed: int = 0, **overrides) -> Path:
    """A wav2vec 2.0 of hidden size 32 and 2 layers, seeded, saved into ``directory``.

    The convolutional encoder keeps the real strides and kernels (hop 320, receptive
    field 400) with 16 channels; ``overrides`` change any ``Wav2Vec2Config`` field.
    """
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    settings = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    settings.update(overrides)
    config = Wav2Vec2Config(**settings)
    torch.manual_seed(seed)
    model = Wav2Vec2Model(config).eval()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    Wav2Vec2FeatureExtractor(
        return_attention_mask=config.feat_extract_norm == "layer"
    ).save_pretrained(directory)
    return directory
