"""Early fusion: a feature set whose pooled statistics join those of two others.

A fused store holds, per utterance, the means of ``a`` then of ``b``, then the
stds of ``a`` then of ``b`` (the usual mean-then-std layout), looked up by
utt_id. It has no frames: frame rates differ between sets (31 fps MFCC, 50 fps
wav2vec2, ~1 fps VGGish), so only pooled classifiers can use it. Fusions chain:
``a`` or ``b`` may itself be fused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vocalab.features.store import FeatureStore, write_store


def fused_names(meta: dict[str, Any], dim: int, name: str) -> list[str]:
    names = list(meta.get("feature_names", []))
    return [f"{name}:{n}" for n in names] if len(names) == dim else [f"{name}:{i}" for i in range(dim)]


def join_pooled(parts: list[np.ndarray]) -> np.ndarray:
    """Mean-then-std rows of several sets -> one mean-then-std row block."""
    halves = [p.shape[1] // 2 for p in parts]
    return np.concatenate([p[:, :h] for p, h in zip(parts, halves)] + [p[:, h:] for p, h in zip(parts, halves)],
                          axis=1)


def fuse_stores(name: str, a: FeatureStore, b: FeatureStore, out: Path, *, layer_pooling: str) -> dict[str, Any]:
    """Write the fused store ``name`` of ``a`` and ``b`` to ``out``; returns its meta.

    Utterances follow ``a``'s order; one absent from either part (no frames, e.g.
    VGGish ``short_clips: drop``) is absent from the fusion and listed in
    ``absent_utt_ids``. Stores built from different manifests are refused.
    """
    absent = set(a.meta.get("absent_utt_ids", [])) | set(b.meta.get("absent_utt_ids", []))
    utt_ids = [u for u in a.utt_ids if u not in absent]
    a.index_of([u for u in b.utt_ids if u not in absent])  # names an utterance that a lacks
    parts, names = [], []
    for store in (a, b):
        pooled = store.pooled_matrix(store.index_of(utt_ids), layer_pooling).astype(np.float32)
        parts.append(pooled)
        names.append(fused_names(store.meta, pooled.shape[1] // 2, store.meta["feature_set"]))
    pooled = join_pooled(parts)
    dim = pooled.shape[1] // 2
    meta = {
        "feature_set": name,
        "feature_names": names[0] + names[1],
        "components": {"a": a.meta, "b": b.meta},
        "layer_pooling": layer_pooling,
        "pretrained": bool(a.meta.get("pretrained")) or bool(b.meta.get("pretrained")),
        "absent_utt_ids": sorted(absent),
    }
    lengths = np.zeros(len(utt_ids), dtype=np.int64)
    write_store(out, utt_ids=utt_ids, frame_blocks=[(np.zeros((0, dim), np.float32), lengths, pooled)],
                total_frames=0, dim=dim, dtype="float32", meta=meta)
    return meta
