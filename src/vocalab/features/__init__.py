"""Feature extractors, one module each, and the registry of feature sets."""

from __future__ import annotations

#: feature set name -> the params section that configures its extractor
FEATURE_SETS: dict[str, str] = {
    "handcrafted": "features",
    "wav2vec2": "embeddings.wav2vec2",
    "vggish": "embeddings.vggish",
    "logmel": "embeddings.vggish",  # written by extract_vggish alongside vggish
}
