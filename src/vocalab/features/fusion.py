"""Early fusion: a feature set whose pooled statistics join those of two others.

A fused store holds, per utterance, the means of ``a`` then of ``b``, then the
stds of ``a`` then of ``b`` (the usual mean-then-std layout), looked up by
utt_id. It has no frames: frame rates differ between sets (31 fps MFCC, 50 fps
wav2vec2, ~1 fps VGGish), so only pooled classifiers can use it. Fusions chain:
``a`` or ``b`` may itself be fused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vocalab.features.store import FeatureStore, StoreMeta, write_store


def fused_names(meta: StoreMeta, dim: int, name: str) -> list[str]:
    names = list(meta.feature_names)
    return [f"{name}:{n}" for n in names] if len(names) == dim else [f"{name}:{i}" for i in range(dim)]


def join_pooled(parts: list[np.ndarray], metas: list[StoreMeta]) -> np.ndarray:
    """Pooled rows of several sets as one block.

    Mean/std sets keep the mean-then-std layout (the means of every part, then
    the stds); as soon as one part holds functionals, the parts are concatenated.
    """
    if any(m.pooled == "functionals" for m in metas):
        return np.concatenate(parts, axis=1)
    halves = [p.shape[1] // 2 for p in parts]
    return np.concatenate([p[:, :h] for p, h in zip(parts, halves)] + [p[:, h:] for p, h in zip(parts, halves)],
                          axis=1)


def fuse_stores(name: str, a: FeatureStore, b: FeatureStore, out: Path, *, layer_pooling: str) -> StoreMeta:
    """Write the fused store ``name`` of ``a`` and ``b`` to ``out``; returns its meta.

    Utterances follow ``a``'s order; one absent from either part (no frames, e.g.
    VGGish ``short_clips: drop``) is absent from the fusion and listed in
    ``absent_utt_ids``. Stores built from different manifests are refused.
    """
    absent = set(a.meta.absent_utt_ids) | set(b.meta.absent_utt_ids)
    utt_ids = [u for u in a.utt_ids if u not in absent]
    a.index_of([u for u in b.utt_ids if u not in absent])  # names an utterance that a lacks
    metas = [a.meta, b.meta]
    parts = [store.pooled_matrix(store.index_of(utt_ids), layer_pooling).astype(np.float32) for store in (a, b)]
    pooled = join_pooled(parts, metas)
    meta = {
        "feature_set": name,
        "components": {"a": a.meta.to_dict(), "b": b.meta.to_dict()},
        "layer_pooling": layer_pooling,
        "pretrained": a.meta.pretrained or b.meta.pretrained,
        "absent_utt_ids": sorted(absent),
    }
    if any(m.pooled == "functionals" for m in metas):
        names = [f"{m.feature_set}:{n}" for m, part in zip(metas, parts)
                 for n in (_pooled_names(m, part.shape[1]))]
        meta.update(feature_names=names, pooled="functionals", pooled_names=names)
        dim = 0
    else:
        names = [fused_names(m, part.shape[1] // 2, m.feature_set) for m, part in zip(metas, parts)]
        meta["feature_names"] = names[0] + names[1]
        dim = pooled.shape[1] // 2
    lengths = np.zeros(len(utt_ids), dtype=np.int64)
    return write_store(out, utt_ids=utt_ids, frame_blocks=[(np.zeros((0, dim), np.float32), lengths, pooled)],
                       total_frames=0, dim=dim, dtype="float32", meta=meta)


def _pooled_names(meta: StoreMeta, width: int) -> list[str]:
    """Names of a part's pooled columns as used (layers averaged give fewer columns than stored)."""
    if len(meta.pooled_names) == width:
        return list(meta.pooled_names)
    half = width // 2
    return [f"{i}_mean" for i in range(half)] + [f"{i}_std" for i in range(half)]
