"""Small random speech encoders of every family ``embeddings.encoder`` runs, saved as ``save_pretrained`` saves
real ones, so the tests load them through the real path with no model hub. Their features mean nothing.
"""

from __future__ import annotations

from pathlib import Path

#: the tiny encoder's transformer: width 32, 2 layers
_TRANSFORMER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_FRONT_END = dict(conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
#: Whisper's tiny encoder reads 3 s windows (150 positions of 20 ms)
WHISPER_WINDOW_S = 3


def save_tiny_encoder(directory: Path, family: str, *, seed: int = 0, head: bool = False,
                      labels: tuple[str, ...] = ("angry", "happy", "neutral", "sad"), **overrides) -> Path:
    """A seeded random ``family`` encoder saved into ``directory`` with its feature extractor's settings.

    ``head=True`` saves the model with an audio-classification head (``...ForSequenceClassification``,
    one output per ``labels``), as an emotion-fine-tuned checkpoint is saved.
    """
    import torch
    from transformers import (AutoConfig, AutoModel, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor,
                              WhisperFeatureExtractor)

    if family == "whisper":
        settings = dict(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_source_positions=50 * WHISPER_WINDOW_S, num_mel_bins=80, vocab_size=100,
                        max_target_positions=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                        decoder_start_token_id=1)
    else:
        settings = dict(_TRANSFORMER, **_FRONT_END)
    settings.update(overrides)
    if head:
        settings.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={c: i for i, c in enumerate(labels)})
    config = AutoConfig.for_model(family, **settings)
    torch.manual_seed(seed)
    model = (AutoModelForAudioClassification if head else AutoModel).from_config(config).eval()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    if family == "whisper":
        WhisperFeatureExtractor(feature_size=80, chunk_length=WHISPER_WINDOW_S).save_pretrained(directory)
    else:
        Wav2Vec2FeatureExtractor(return_attention_mask=getattr(config, "feat_extract_norm", "layer") == "layer",
                                 do_normalize=True).save_pretrained(directory)
    return directory
