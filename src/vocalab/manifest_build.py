"""Build the manifest from what a corpus layout found: read every file once, keep or reject it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from vocalab.audio import audio_hash, read_info, sample_blocks
from vocalab.datasets.base import Candidate
from vocalab.errors import AudioError, ManifestError
from vocalab.manifest_cache import FIELDS, ManifestCache
from vocalab.manifest import (CONFLICTING_LABELS, CORE_COLUMNS, DUPLICATE, EMPTY, LEFT_OUT, MIN_DURATION_S,
                              NON_FINITE, REJECT_COLUMNS, SILENT, TOO_SHORT, TRUNCATED, UNREADABLE,
                              validate_manifest)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (absolute if outside ``root``)."""
    path = Path(os.path.abspath(path))
    try:
        return path.relative_to(Path(os.path.abspath(root))).as_posix()
    except ValueError:
        return path.as_posix()


def wav_truncation(path: Path) -> str | None:
    """Why a WAV file holds fewer samples than its header promises, or None.

    libsndfile reads such a file (an interrupted copy, a recorder that died) as a shorter
    clip without a word; the manifest rejects it instead, so no clip is silently cut.
    """
    import struct

    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        order = "<" if head[:4] == b"RIFF" else ">"
        size = path.stat().st_size
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
            if name == b"data":
                available = size - handle.tell()
                if length != 0xFFFFFFFF and length > available:  # 0xFFFFFFFF: a stream of unknown length
                    return (f"'{path}' is truncated: its header promises {length:,} bytes of samples, the file "
                            f"holds {available:,}. Copy it again, or re-encode what is left of it.")
                return None
            handle.seek(length + (length & 1), 1)


def inspect_file(path: Path, known_hash: str | None = None) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """Read a file's header and decode it once to prove it is usable.

    Returns ``(fields, None)`` for a good file or ``(None, (reason, detail))``.
    ``known_hash`` is the file's ``audio_hash`` when its corpus index already holds it.
    """
    try:
        info = read_info(path)
    except AudioError as err:
        return None, (UNREADABLE, str(err))
    if info.num_frames == 0:
        return None, (EMPTY, f"'{path}' has a valid header but 0 samples")
    if path.suffix.lower() == ".wav":
        truncated = wav_truncation(path)
        if truncated:
            return None, (TRUNCATED, truncated)
    try:
        peak = 0.0
        finite = True
        for block in sample_blocks(path):
            finite = finite and bool(np.isfinite(block).all())
            peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
    except (sf.LibsndfileError, RuntimeError, AudioError) as err:
        return None, (UNREADABLE, f"'{path}' has a header but its samples cannot be decoded ({err})")
    if not finite:
        return None, (NON_FINITE, f"'{path}' holds NaN or infinite samples")
    if peak == 0.0:
        return None, (SILENT, f"'{path}' is digital silence (every sample is zero)")
    if info.duration_s < MIN_DURATION_S:
        return None, (TOO_SHORT, f"'{path}' lasts {info.duration_s * 1000:.0f} ms, under the "
                                 f"{MIN_DURATION_S * 1000:.0f} ms a clip needs to carry prosody")
    return {
        "duration_s": round(info.duration_s, 6),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "format": info.format,
        "subtype": info.subtype,
        # the file's content: feature caches are keyed by it, and DVC sees it change
        "audio_hash": known_hash or audio_hash(path),
    }, None


def _fields(path: Path, known_hash: str | None,
            cache: ManifestCache | None) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """:func:`inspect_file`, or what ``cache`` holds for a file with the same content."""
    if cache is None:
        return inspect_file(path, known_hash)
    if known_hash is None:
        try:
            known_hash = audio_hash(path)
        except OSError:  # inspect_file says why it cannot be read
            return inspect_file(path)
    cached = cache.get(known_hash)
    if cached is not None:
        return {**{key: cached[key] for key in FIELDS}, "audio_hash": known_hash}, None
    fields, problem = inspect_file(path, known_hash)
    if fields is not None:
        cache.put(known_hash, fields)
    return fields, problem


class NoUsableAudio(ManifestError):
    """Not one file of a corpus could be used; ``rejects`` says why for each."""

    def __init__(self, message: str, rejects: pd.DataFrame) -> None:
        super().__init__(message)
        self.rejects = rejects


def build_manifest(
    candidates: Iterable[Candidate], *, dataset: str, root: Path = Path("."), progress: bool = True,
    hashes: Mapping[str, str] | None = None, cache: ManifestCache | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn scanned candidates into ``(manifest, rejects)`` tables.

    Parameters
    ----------
    candidates : iterable of Candidate
        What a corpus layout found; those with a ``reason`` are rejected as they are.
    dataset : str
        Written in the ``dataset`` column.
    root : Path
        Paths are stored relative to this folder (the project root); a file outside it
        (a local corpus elsewhere) keeps its absolute path.
    hashes : mapping, optional
        ``audio_hash`` by file path (as the candidates give it), from a local corpus's index.
    cache : ManifestCache, optional
        What earlier runs found decoding files with the same content: those are not
        decoded again, and what this run finds is added to it (saved by the caller).
    """
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    candidates = list(candidates)
    for cand in tqdm(candidates, desc="validate audio", unit="file", disable=not progress):
        rel = _relative(cand.path, root)
        if cand.reason is not None:
            rejects.append({"path": rel, "utt_id": "", "reason": cand.reject_as, "detail": cand.reason})
            continue
        if cand.utt_id is None or cand.speaker is None or cand.label is None:
            raise ManifestError(f"the corpus layout gave '{rel}' no utt_id, speaker or label and no reason.")
        if cand.utt_id in seen:
            rejects.append({
                "path": rel, "utt_id": cand.utt_id, "reason": DUPLICATE,
                "detail": f"utt_id '{cand.utt_id}' already used by '{seen[cand.utt_id]}'",
            })
            continue
        fields, problem = _fields(cand.path, (hashes or {}).get(str(cand.path)), cache)
        if problem is not None:
            rejects.append({"path": rel, "utt_id": cand.utt_id, "reason": problem[0], "detail": problem[1]})
            continue
        seen[cand.utt_id] = rel
        rows.append({
            "utt_id": cand.utt_id, "path": rel, "dataset": dataset,
            "speaker": cand.speaker, "label": cand.label, **fields, **cand.extras,
        })
    rows, conflicting = _without_conflicting_labels(rows)
    rejects += conflicting
    manifest = pd.DataFrame(rows)
    rejects_df = pd.DataFrame(rejects, columns=REJECT_COLUMNS).sort_values("path", kind="stable").reset_index(drop=True)
    if manifest.empty:
        common = ""
        if len(rejects_df):
            reason = rejects_df["reason"].value_counts().index[0]
            example = rejects_df[rejects_df["reason"] == reason].iloc[0]
            common = f", {int((rejects_df['reason'] == reason).sum())} as {reason}, e.g. {example['detail']}"
        where = "data.label_map" if set(rejects_df["reason"]) == {LEFT_OUT} else "data.path and data.layout"
        raise NoUsableAudio(
            f"no usable audio found for dataset '{dataset}' ({len(rejects)} file(s) rejected{common}). "
            f"Check {where}.", rejects_df)
    extras = [c for c in manifest.columns if c not in CORE_COLUMNS]
    manifest = manifest[CORE_COLUMNS + extras].sort_values("utt_id", kind="stable")
    manifest = manifest.reset_index(drop=True)
    validate_manifest(manifest)
    return manifest, rejects_df


def _without_conflicting_labels(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows whose audio (``audio_hash``) appears under another id with another label are rejected, every copy,
    each naming the others: which label is right cannot be known, and the same recording on both sides of a
    split would be scored against itself."""
    copies: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        copies.setdefault(row["audio_hash"], []).append(row)
    conflicting = {h for h, found in copies.items() if len({str(r["label"]) for r in found}) > 1}
    rejects = []
    for row in (r for r in rows if r["audio_hash"] in conflicting):
        others = ", ".join(f"'{o['path']}' ({o['utt_id']}, label {o['label']!r})" for o in copies[row["audio_hash"]]
                           if o is not row)
        rejects.append({"path": row["path"], "utt_id": row["utt_id"], "reason": CONFLICTING_LABELS,
                        "detail": f"'{row['path']}' (label {row['label']!r}) holds the same audio as {others}. "
                                  f"Keep one copy, with its right label."})
    return [r for r in rows if r["audio_hash"] not in conflicting], rejects


def merge_manifests(parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One manifest and one rejects table from several corpora's, sorted as one.

    The same audio under two labels is rejected across corpora too (each copy naming the
    others), as within one: after ``data.label_map`` two corpora may disagree about a file.
    """
    if len(parts) == 1:
        return parts[0]
    manifest = pd.concat([m for m, _ in parts], ignore_index=True)
    rows, conflicting = _without_conflicting_labels(manifest.to_dict("records"))
    manifest = pd.DataFrame(rows, columns=manifest.columns)
    extras = [c for c in manifest.columns if c not in CORE_COLUMNS]
    manifest = manifest[CORE_COLUMNS + extras].sort_values("utt_id", kind="stable").reset_index(drop=True)
    found = pd.DataFrame(conflicting, columns=REJECT_COLUMNS)
    rejects = pd.concat([r for _, r in parts] + ([found] if len(found) else []),
                        ignore_index=True).sort_values("path", kind="stable")
    validate_manifest(manifest)
    return manifest, rejects.reset_index(drop=True)


