"""The feature store: a few large files per feature set, not one file per utterance.

Layout of ``data/features/<set>/``::

    frames.npy    [shape=(total_frames, dim)]   every utterance's frames, concatenated
    offsets.npy   [shape=(n_utts + 1,), int64]  utterance i is frames[offsets[i]:offsets[i+1]]
    pooled.npy    [shape=(n_utts, n_pooled), float32]  per-utterance features for pooled models
    utt_ids.txt   one utt_id per line, in store order (the manifest's order)
    meta.json     parameters, feature names, dimensions, frame rate, provenance (:class:`StoreMeta`)

``pooled.npy`` holds the mean then the std of each frame feature (``pooled:
mean_std``, ``n_pooled = 2 * dim``, the default), or utterance-level features of
their own (``pooled: functionals``, e.g. openSMILE functionals, named by
``pooled_names``), so no set has to fake frames to give pooled features.
``frames.npy`` opens memory-mapped, so a store larger than memory is fine.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from vocalab.errors import FeatureStoreError

FILES = ("frames.npy", "offsets.npy", "pooled.npy", "utt_ids.txt", "meta.json")


POOLED_KINDS = ("mean_std", "functionals")


@dataclass(frozen=True)
class StoreMeta:
    """A store's ``meta.json``: the fields vocalab reads, typed, each with one default.

    ``raw`` is the file as written: extractors add provenance of their own
    (architecture, front end, weights, ...), kept as it is. A fused store
    (:mod:`vocalab.features.fusion`) has ``components``: the metas of its parts, in order, and
    ``pooled_blocks``: the part each pooled column comes from.
    """

    feature_set: str
    feature_names: tuple[str, ...]
    dim: int
    pooled_names: tuple[str, ...]
    n_utterances: int = 0
    total_frames: int = 0
    frames_dtype: str = "float32"
    pooled: Literal["mean_std", "functionals"] = "mean_std"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    pretrained: bool = False
    model: str | None = None  # the network the features come from (None: no network)
    layers: tuple[Any, ...] = ()  # a multi-layer store's layers, each ``layer_dim`` wide
    layer_dim: int | None = None
    components: tuple[StoreMeta, ...] = ()
    pooled_blocks: tuple[int, ...] = ()
    weighting: str = "none"  # a fusion's: equal | none
    reads_speech_region: bool = False  # the extractor read each utterance's speech region ...
    vad: dict[str, Any] | None = None  # ... found with these vad params
    absent_utt_ids: tuple[str, ...] = ()
    short_clips: dict[str, Any] | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def is_fused(self) -> bool:
        return bool(self.components)

    @property
    def random_init_network(self) -> bool:
        """Whether the features came from a network with random weights (none for MFCC or log-mel)."""
        if self.is_fused:
            return any(part.random_init_network for part in self.components)
        return bool(self.model) and not self.pretrained

    def to_dict(self) -> dict[str, Any]:
        return self.raw

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> StoreMeta:
        """Check and type a meta dict; a missing or malformed field is a FeatureStoreError naming it."""
        if not isinstance(data, dict):
            raise FeatureStoreError(f"{source} is not a JSON object. Rebuild the store with 'dvc repro'.")

        def get(key: str, kind: Any, default: Any = dataclasses.MISSING) -> Any:
            if key not in data or (data[key] is None and default is not dataclasses.MISSING):
                if default is dataclasses.MISSING:
                    raise FeatureStoreError(f"{source} lacks '{key}'. Rebuild the store with 'dvc repro'.")
                return default
            value = data[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise FeatureStoreError(f"{source} has a malformed '{key}' ({value!r}). "
                                        f"Rebuild the store with 'dvc repro'.")
            return value

        components = get("components", list, [])
        if len(components) == 1:
            raise FeatureStoreError(f"{source} has one component; a fusion joins at least two sets. "
                                    f"Rebuild the store with 'dvc repro'.")
        pooled = get("pooled", str, "mean_std")
        if pooled not in POOLED_KINDS:
            raise FeatureStoreError(f"{source} has pooled = {pooled!r}; expected one of {POOLED_KINDS}. "
                                    f"Rebuild the store with 'dvc repro'.")
        feature_names = tuple(get("feature_names", list))
        return cls(
            feature_set=get("feature_set", str), feature_names=feature_names, dim=get("dim", int),
            pooled_names=tuple(get("pooled_names", list)),
            n_utterances=get("n_utterances", int, 0), total_frames=get("total_frames", int, 0),
            frames_dtype=get("frames_dtype", str, "float32"), pooled=pooled, params=get("params", dict, {}),
            pretrained=get("pretrained", bool, False), model=get("model", str, None),
            layers=tuple(get("layers", list, [])), layer_dim=get("layer_dim", int, None),
            components=tuple(cls.from_dict(part, source=f"{source} (component {k + 1})")
                             for k, part in enumerate(components)),
            pooled_blocks=tuple(get("pooled_blocks", list, [])), weighting=get("weighting", str, "none"),
            reads_speech_region=get("reads_speech_region", bool, False), vad=get("vad", dict, None),
            absent_utt_ids=tuple(get("absent_utt_ids", list, [])), short_clips=get("short_clips", dict, None),
            raw=data,
        )

    @classmethod
    def read(cls, path: Path) -> StoreMeta:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FeatureStoreError(f"'{path}' cannot be read as JSON ({err}). Rebuild the store with 'dvc repro'.") \
                from err
        return cls.from_dict(data, source=f"'{path}'")


@dataclass(frozen=True)
class Output:
    """One feature store that an extractor writes: its name, frame width and dtype, and meta."""

    name: str
    dim: int
    frames_dtype: str
    meta: dict[str, Any]


def pool(frames: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time.

    Parameters
    ----------
    frames : np.ndarray [shape=(t, d)], t >= 1

    Returns
    -------
    np.ndarray [shape=(2 * d,), dtype=float32]
    """
    frames = np.asarray(frames, dtype=np.float64)  # float64 sums: the same float32 result on every CPU
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)


def pooled_names(feature_names: Sequence[str]) -> list[str]:
    return [f"{n}_mean" for n in feature_names] + [f"{n}_std" for n in feature_names]


def pool_layers(pooled: np.ndarray, meta: StoreMeta, layer_pooling: str, *, source: str = "features") -> np.ndarray:
    """Pooled features as a float64 matrix, with a multi-layer store's layers combined.

    A store of several layers (meta ``layers`` and ``layer_dim``) holds each
    layer's mean then each layer's std; ``layer_pooling="mean"`` averages them
    across layers into ``2 * layer_dim`` columns, ``"concat"`` keeps them all.
    """
    pooled = np.asarray(pooled, dtype=np.float64)
    if layer_pooling == "concat" or len(meta.layers) <= 1:
        return pooled
    n_layers, layer_dim = len(meta.layers), int(meta.layer_dim or 0)
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
) -> StoreMeta:
    """Write a store from blocks of ``(frames, lengths)`` or ``(frames, lengths, pooled)``; returns its meta.

    Blocks come in ``utt_ids`` order. Without ``pooled`` the statistics are taken
    from the stored frames; extractors pass them computed before any cast to a
    narrower ``dtype``. A store of functionals (meta ``pooled: functionals``)
    passes its pooled rows in every block, named by meta ``pooled_names``.

    Blocks are appended to ``frames.npy`` as they come, so memory stays bounded.
    The store is written to ``<root>.tmp`` and renamed into place once complete.
    """
    functionals = meta.get("pooled", "mean_std") == "functionals"
    names = list(meta["pooled_names"]) if functionals else pooled_names(meta["feature_names"])
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        offsets = np.zeros(len(utt_ids) + 1, dtype=np.int64)
        pooled = np.zeros((len(utt_ids), len(names)), dtype=np.float32)
        cursor, index = 0, 0
        with open(tmp / "frames.npy", "wb") as frames_out:  # appended block by block: memory stays flat
            np.lib.format.write_array_header_1_0(frames_out, {
                "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                "shape": (int(total_frames), int(dim))})
            for frames, lengths, *given in frame_blocks:
                if frames.ndim != 2 or frames.shape[1] != dim:
                    raise FeatureStoreError(f"frame block of shape {frames.shape} does not match dim={dim}")
                if functionals and not given:
                    raise FeatureStoreError("a store of functionals needs its pooled rows in every block")
                count = len(lengths)
                if index + count > len(utt_ids):
                    raise FeatureStoreError(f"frame blocks hold more than the {len(utt_ids)} utterances given")
                if given:
                    pooled[index:index + count] = given[0]
                else:
                    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
                    for k, (start, length) in enumerate(zip(starts, lengths)):
                        pooled[index + k] = pool(frames[start:start + length])
                offsets[index + 1:index + count + 1] = offsets[index] + np.cumsum(lengths, dtype=np.int64)
                index += count
                frames_out.write(np.ascontiguousarray(frames, dtype=dtype).tobytes())
                cursor += len(frames)
        if index != len(utt_ids) or cursor != total_frames:
            raise FeatureStoreError(
                f"store incomplete: wrote {index}/{len(utt_ids)} utterances and {cursor}/{total_frames} frames"
            )
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "pooled.npy", pooled)
        (tmp / "utt_ids.txt").write_text("".join(f"{u}\n" for u in utt_ids), encoding="utf-8")
        checked = StoreMeta.from_dict(
            {**meta, "n_utterances": len(utt_ids), "total_frames": int(total_frames), "dim": dim,
             "frames_dtype": dtype, "pooled_names": names}, source=f"meta of '{root}'")
        (tmp / "meta.json").write_text(json.dumps(checked.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except BaseException as err:  # a full disk, an interrupt, a bad block: no half-written store is left
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            raise FeatureStoreError(f"could not write the feature store '{root}' ({err.strerror or err}): the "
                                    f"disk is full or not writable. Free space there and run again.") from err
        raise
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return checked


#: the meta key of a store folder that holds no features because no set of the run uses it
NOT_BUILT = "not_built"


def write_not_built(root: Path, feature_set: str, reason: str) -> None:
    """Leave at ``root`` a store folder that says why it holds no features (a set no ``train.feature_sets``
    entry uses is not extracted or fused: its stage writes this in a moment instead)."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"feature_set": feature_set, NOT_BUILT: reason}, indent=2) + "\n",
                                    encoding="utf-8")


def _load_array(path: Path, mmap_mode: Literal["r"] | None = None) -> np.ndarray:
    """A numeric array from a ``.npy`` file; a pickled, object or damaged file is a FeatureStoreError naming it."""
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # numpy's text would suggest allow_pickle: never pass it on
        kind = "holds Python objects (pickled data), which vocalab never loads" if "pickle" in str(err) else \
            f"is not a readable numpy array ({type(err).__name__})"
        raise FeatureStoreError(f"'{path}' {kind}. Rebuild the store with 'dvc repro'.") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise FeatureStoreError(f"'{path}' holds {getattr(array, 'dtype', type(array).__name__)} values, not numbers. "
                                f"Rebuild the store with 'dvc repro'.")
    return array


def _refuse_not_built(root: Path) -> None:
    try:
        data = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and NOT_BUILT in data:
        raise FeatureStoreError(f"feature store '{root}' was not built: {data[NOT_BUILT]}. List the set in "
                                f"train.feature_sets (or in a fusion it lists) and run 'dvc repro'.")


class FeatureStore:
    """Read access to a store written by :func:`write_store`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        _refuse_not_built(self.root)
        missing = [name for name in FILES if not (self.root / name).is_file()]
        if missing:
            raise FeatureStoreError(
                f"feature store '{self.root}' is missing {', '.join(missing)}. "
                f"Rebuild it with 'dvc repro' (the extract stage for this feature set)."
            )
        self.meta = StoreMeta.read(self.root / "meta.json")
        self.utt_ids: list[str] = (self.root / "utt_ids.txt").read_text(encoding="utf-8").splitlines()
        self.offsets = _load_array(self.root / "offsets.npy")
        self.pooled = _load_array(self.root / "pooled.npy")
        self.frames = _load_array(self.root / "frames.npy", mmap_mode="r")
        n = len(self.utt_ids)
        if (self.offsets.shape != (n + 1,) or self.pooled.shape != (n, len(self.meta.pooled_names))
                or self.offsets[-1] != len(self.frames)):
            raise FeatureStoreError(
                f"feature store '{self.root}' is inconsistent (utt_ids={n}, offsets={self.offsets.shape}, "
                f"pooled={self.pooled.shape}, frames={self.frames.shape}). Rebuild it with 'dvc repro'."
            )
        self._index = {u: i for i, u in enumerate(self.utt_ids)}

    def __len__(self) -> int:
        return len(self.utt_ids)

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
        """False for a fused store, which holds pooled features only."""
        return not self.meta.is_fused

    def pooled_matrix(self, rows: np.ndarray, layer_pooling: str) -> np.ndarray:
        """Pooled features of ``rows`` as a float64 matrix (see :func:`pool_layers`)."""
        return pool_layers(self.pooled[rows], self.meta, layer_pooling, source=f"feature store '{self.root}'")

    def sequence(self, utt_id: str) -> np.ndarray:
        """Frames of one utterance, ``[shape=(t, dim)]``."""
        i = self.index_of([utt_id])[0]
        return np.asarray(self.frames[self.offsets[i]:self.offsets[i + 1]])
