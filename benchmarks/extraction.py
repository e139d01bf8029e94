"""Benchmark: handcrafted extraction vs the per-file librosa loop of the notebooks.

Both run on the same files, in the same process, after a warm-up. Prints
audio-seconds processed per wall-clock second and the ratio.

    python benchmarks/extraction.py [--manifest data/manifest.csv] [--limit N] [--workers N]

Needs the manifest of a `dvc repro` run (`make repro`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np

from vocalab.features.extraction import extract_manifest
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
from vocalab.manifest import read_manifest
from vocalab.parallel import default_workers
from vocalab.params import load_section


def naive_loop(paths: list[str], config: HandcraftedConfig) -> list[np.ndarray]:
    """What the reference notebook does, file by file."""
    out = []
    for path in paths:
        y, sr = librosa.load(path, sr=config.sample_rate)
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=config.n_mfcc, hop_length=config.hop_length,
                                    n_fft=config.n_fft, n_mels=config.n_mels)
        rms = librosa.feature.rms(y=y, hop_length=config.hop_length, frame_length=config.n_fft)
        zcr = librosa.feature.zero_crossing_rate(y, hop_length=config.hop_length, frame_length=config.n_fft)
        out.append(np.vstack([mfcc, rms, zcr]).T)
    return out


def vocalab_run(manifest, config: HandcraftedConfig, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        extract_manifest(manifest, HandcraftedExtractor(config), Path(tmp) / "store", workers=workers,
                         scratch_root=Path(tmp) / "scratch", progress=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=Path("data/manifest.csv"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--limit", type=int, default=None, help="use the first N files only")
    parser.add_argument("--workers", type=int, default=None, help="default: all usable CPUs")
    args = parser.parse_args()
    if not args.manifest.is_file():
        sys.exit(f"error: {args.manifest} not found. Run the pipeline first (make repro).")
    config = load_section(HandcraftedConfig, "features", args.params)
    manifest = read_manifest(args.manifest, check_files=True)
    if args.limit:
        manifest = manifest.iloc[: args.limit]
    paths = manifest["path"].tolist()
    audio_s = float(manifest["duration_s"].sum())
    workers = args.workers or default_workers()
    print(f"{len(paths)} files, {audio_s:.1f} s of audio, {os.cpu_count()} CPUs, params: {config}")

    naive_loop(paths[:2], config)  # warm-up: librosa's numba kernels compile on first use
    start = time.perf_counter()
    naive_loop(paths, config)
    naive_s = time.perf_counter() - start
    single_s = vocalab_run(manifest, config, workers=1)
    parallel_s = vocalab_run(manifest, config, workers=workers)

    rows = [("naive librosa loop (1 process)", naive_s),
            ("vocalab, 1 worker", single_s),
            (f"vocalab, {workers} workers", parallel_s)]
    print(f"{'':34s} {'wall s':>8s} {'audio-s/s':>10s} {'vs naive':>9s}")
    for name, seconds in rows:
        print(f"{name:34s} {seconds:8.2f} {audio_s / seconds:10.0f} {naive_s / seconds:8.2f}x")


if __name__ == "__main__":
    main()
