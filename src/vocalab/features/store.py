"""The feature store: a few large files per feature set, not one file per utterance.

Layout of ``data/features/<set>/``::

    frames.npy    [shape=(total_frames, dim)]   every utterance's frames, concatenated
    offsets.npy   [shape=(n_utts + 1,), int64]  utterance i is frames[offsets[i]:offsets[i+1]]
    pooled.npy    [shape=(n_utts, 2 * dim), float32]  per-utterance mean then std
    utt_ids.txt   one utt_id per line, in store order (the manifest's order)
    meta.json     parameters, feature names, dimensions, frame rate, provenance

``frames.npy`` opens memory-mapped, so a store larger than memory is fine.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from vocalab.errors import FeatureStoreError

FILES = ("frames.npy", "offsets.npy", "pooled.npy", "utt_ids.txt", "meta.json")


def pool(frames: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time.

    Parameters
    ----------
    frames : np.ndarray [shape=(t, d)], t >= 1

    Returns
    -------
    np.ndarray [shape=(2 * d,), dtype=float32]
    """
    frames = np.asarray(frames, dtype=np.float32)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)


def pooled_names(feature_names: Sequence[str]) -> list[str]:
    return [f"{n}_mean" for n in feature_names] + [f"{n}_std" for n in feature_names]


def pool_layers(pooled: np.ndarray, meta: dict[str, Any], layer_pooling: str = "concat", *,
                source: str = "features") -> np.ndarray:
    """Pooled statistics as a float64 matrix, with a multi-layer store's layers combined.

    A store of several layers (meta ``layers`` and ``layer_dim``) holds each
    layer's mean then each layer's std; ``layer_pooling="mean"`` averages them
    across layers into ``2 * layer_dim`` columns, ``"concat"`` keeps them all.
    """
    pooled = np.asarray(pooled, dtype=np.float64)
    layers = meta.get("layers") or []
    if layer_pooling == "concat" or len(layers) <= 1:
        return pooled
    n_layers, layer_dim = len(layers), int(meta["layer_dim"])
    half = n_layers * layer_dim
    if pooled.shape[1] != 2 * half:
        raise FeatureStoreError(
            f"{source} has {pooled.shape[1]} pooled columns, expected {2 * half} "
            f"for {n_layers} layers of {layer_dim}. Rebuild it with 'dvc repro'."
        )
    mean = pooled[:, :half].reshape(-1, n_layers, layer_dim).mean(axis=1)
    std = pooled[:, half:].reshape(-1, n_layers, layer_dim).mean(axis=1)
    return np.concatenate([mean, std], axis=1)


def write_store(
    root: Path,
    *,
    utt_ids: Sequence[str],
    frame_blocks: Iterable[tuple[np.ndarray, ...]],
    total_frames: int,
    dim: int,
    dtype: str,
    meta: dict[str, Any],
) -> None:
    """Write a store from blocks of ``(frames, lengths)`` or ``(frames, lengths, pooled)``.

    Blocks come in ``utt_ids`` order. Without ``pooled`` the statistics are taken
    from the stored frames; extractors pass them computed before any cast to a
    narrower ``dtype``.

    Blocks are streamed into a memory-mapped ``frames.npy`` so memory stays bounded.
    The store is written to ``<root>.tmp`` and renamed into place once complete.
    """
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    frames_out = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=dtype, shape=(total_frames, dim))
    offsets = np.zeros(len(utt_ids) + 1, dtype=np.int64)
    pooled = np.zeros((len(utt_ids), 2 * dim), dtype=np.float32)
    cursor, index = 0, 0
    for frames, lengths, *given in frame_blocks:
        if frames.ndim != 2 or frames.shape[1] != dim:
            raise FeatureStoreError(f"frame block of shape {frames.shape} does not match dim={dim}")
        start = 0
        for k, length in enumerate(lengths):
            pooled[index] = given[0][k] if given else pool(frames[start:start + length])
            start += length
            index += 1
            offsets[index] = offsets[index - 1] + length
        frames_out[cursor:cursor + len(frames)] = frames
        cursor += len(frames)
    if index != len(utt_ids) or cursor != total_frames:
        raise FeatureStoreError(
            f"store incomplete: wrote {index}/{len(utt_ids)} utterances and {cursor}/{total_frames} frames"
        )
    frames_out.flush()
    del frames_out
    np.save(tmp / "offsets.npy", offsets)
    np.save(tmp / "pooled.npy", pooled)
    (tmp / "utt_ids.txt").write_text("".join(f"{u}\n" for u in utt_ids), encoding="utf-8")
    meta = {**meta, "n_utterances": len(utt_ids), "total_frames": int(total_frames), "dim": dim,
            "frames_dtype": dtype, "pooled_names": pooled_names(meta["feature_names"])}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)


class FeatureStore:
    """Read access to a store written by :func:`write_store`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        missing = [name for name in FILES if not (self.root / name).is_file()]
        if missing:
            raise FeatureStoreError(
                f"feature store '{self.root}' is missing {', '.join(missing)}. "
                f"Rebuild it with 'dvc repro' (the extract stage for this feature set)."
            )
        self.meta: dict[str, Any] = json.loads((self.root / "meta.json").read_text(encoding="utf-8"))
        self.utt_ids: list[str] = (self.root / "utt_ids.txt").read_text(encoding="utf-8").splitlines()
        self.offsets = np.load(self.root / "offsets.npy")
        self.pooled = np.load(self.root / "pooled.npy")
        self.frames = np.load(self.root / "frames.npy", mmap_mode="r")
        n = len(self.utt_ids)
        if self.offsets.shape != (n + 1,) or self.pooled.shape[0] != n or self.offsets[-1] != len(self.frames):
            raise FeatureStoreError(
                f"feature store '{self.root}' is inconsistent (utt_ids={n}, offsets={self.offsets.shape}, "
                f"pooled={self.pooled.shape}, frames={self.frames.shape}). Rebuild it with 'dvc repro'."
            )
        self._index = {u: i for i, u in enumerate(self.utt_ids)}

    def __len__(self) -> int:
        return len(self.utt_ids)

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    def index_of(self, utt_ids: Sequence[str]) -> np.ndarray:
        """Row indices of ``utt_ids``; a FeatureStoreError names any that are absent."""
        missing = [u for u in utt_ids if u not in self._index]
        if missing:
            raise FeatureStoreError(
                f"feature store '{self.root}' lacks {len(missing)} utterance(s) of the manifest "
                f"(first: '{missing[0]}'). It was built from another manifest: run 'dvc repro'."
            )
        return np.array([self._index[u] for u in utt_ids], dtype=np.int64)

    @property
    def has_frames(self) -> bool:
        """False for a fused store, which holds pooled statistics only."""
        return not self.meta.get("components")

    def pooled_matrix(self, rows: np.ndarray, layer_pooling: str = "concat") -> np.ndarray:
        """Pooled statistics of ``rows`` as a float64 matrix (see :func:`pool_layers`)."""
        return pool_layers(self.pooled[rows], self.meta, layer_pooling, source=f"feature store '{self.root}'")

    def sequence(self, utt_id: str) -> np.ndarray:
        """Frames of one utterance, ``[shape=(t, dim)]``."""
        i = self.index_of([utt_id])[0]
        return np.asarray(self.frames[self.offsets[i]:self.offsets[i + 1]])
