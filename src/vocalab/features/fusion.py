"""Early fusion: a feature set whose pooled statistics join those of any number of others.

A fused store holds, per utterance, the pooled rows of its sets looked up by utt_id:
for sets of mean/std statistics the means of every set, then their stds (the usual
mean-then-std layout); as soon as one set holds functionals, each set's row in turn.
It has no frames: frame rates differ between sets (31 fps MFCC, 50 fps wav2vec2,
~1 fps VGGish), so only pooled classifiers can use it.

``weighting: equal`` records which set each pooled column comes from
(``pooled_blocks``): the classifier then scales every column, after
standardisation, by ``1 / sqrt(width of its set)``, so that each set adds the same
expected squared distance whatever its width (6,373 ComParE functionals do not drown
256 voice-encoder dimensions). ``none`` leaves every column at unit variance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vocalab.features.store import FeatureStore, StoreMeta, write_store

WEIGHTINGS = ("equal", "none")


def fused_names(meta: StoreMeta, dim: int, name: str) -> list[str]:
    names = list(meta.feature_names)
    return [f"{name}:{n}" for n in names] if len(names) == dim else [f"{name}:{i}" for i in range(dim)]


def _functionals(metas: Sequence[StoreMeta]) -> bool:
    return any(m.pooled == "functionals" for m in metas)


def join_pooled(parts: list[np.ndarray], metas: list[StoreMeta]) -> np.ndarray:
    """Pooled rows of several sets as one block.

    Mean/std sets keep the mean-then-std layout (the means of every part, then
    the stds); as soon as one part holds functionals, the parts are concatenated.
    """
    if _functionals(metas):
        return np.concatenate(parts, axis=1)
    halves = [p.shape[1] // 2 for p in parts]
    return np.concatenate([p[:, :h] for p, h in zip(parts, halves)] + [p[:, h:] for p, h in zip(parts, halves)],
                          axis=1)


def pooled_blocks(widths: Sequence[int], metas: Sequence[StoreMeta]) -> list[int]:
    """The index of the set each column of :func:`join_pooled`'s block comes from."""
    ids = [np.full(w, k) for k, w in enumerate(widths)]
    if _functionals(metas):
        return np.concatenate(ids).tolist()
    return join_pooled([i[None] for i in ids], list(metas))[0].tolist()


def block_weights(meta: StoreMeta) -> np.ndarray | None:
    """Per pooled column of a fused store, ``1 / sqrt(width of its set)`` under ``weighting: equal``; else None."""
    if not meta.pooled_blocks or meta.weighting != "equal":
        return None
    blocks = np.asarray(meta.pooled_blocks)
    widths = np.bincount(blocks)
    return (1.0 / np.sqrt(widths[blocks])).astype(np.float64)


def fuse_stores(name: str, stores: Sequence[FeatureStore], out: Path, *, layer_pooling: str,
                weighting: str = "none") -> StoreMeta:
    """Write the fused store ``name`` of ``stores`` to ``out``; returns its meta.

    Utterances follow the first store's order; one absent from any part (no frames,
    e.g. VGGish ``short_clips: drop``) is absent from the fusion and listed in
    ``absent_utt_ids``. Stores built from different manifests are refused.
    """
    if len(stores) < 2:
        raise ValueError(f"a fusion joins at least two sets, got {len(stores)}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    absent = set().union(*(s.meta.absent_utt_ids for s in stores))
    utt_ids = [u for u in stores[0].utt_ids if u not in absent]
    for store in stores[1:]:
        stores[0].index_of([u for u in store.utt_ids if u not in absent])  # names an utterance the first lacks
    metas = [s.meta for s in stores]
    parts = [store.pooled_matrix(store.index_of(utt_ids), layer_pooling).astype(np.float32) for store in stores]
    pooled = join_pooled(parts, metas)
    meta = {
        "feature_set": name,
        "components": [m.to_dict() for m in metas],
        "layer_pooling": layer_pooling,
        "weighting": weighting,
        "pooled_blocks": pooled_blocks([p.shape[1] for p in parts], metas),
        "pretrained": any(m.pretrained for m in metas),
        "absent_utt_ids": sorted(absent),
    }
    if _functionals(metas):
        names = [f"{m.feature_set}:{n}" for m, part in zip(metas, parts) for n in _pooled_names(m, part.shape[1])]
        meta.update(feature_names=names, pooled="functionals", pooled_names=names)
        dim = 0
    else:
        meta["feature_names"] = [n for m, part in zip(metas, parts)
                                 for n in fused_names(m, part.shape[1] // 2, m.feature_set)]
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
