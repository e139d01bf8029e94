"""Benchmark: peak memory of extraction on one long file.

Writes a speech-like WAV of the given length (16 kHz, 16-bit, written in blocks), then, in a
fresh process per feature set, decodes it as a stage does and extracts its features. Each
process reports its peak resident memory (``ru_maxrss``), the resident memory once the file
is decoded (imports plus the float32 signal, 4 bytes per second of audio per 16,000 samples),
and the difference: the extractor's own working memory, which should not grow with the
file's length.

    python benchmarks/long_file.py                   # a 2-hour file: vad, handcrafted, openSMILE, voice
    python benchmarks/long_file.py --minutes 10 --sets handcrafted
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from results import add_results_argument, cpu_kind, record

RATE = 16000
CHILD = r"""
import json, resource, sys, time
import numpy as np
from vocalab.audio import load_audio
from vocalab.features.registry import extractor as spec_of
from vocalab.params import load_section

name, path = sys.argv[1], sys.argv[2]
if name == "vad":  # the speech-region stage, which runs before the extractors that read regions
    from vocalab.vad import VADConfig, find_regions, load_silero

    class Regions:
        sampling_rate, model = 16000, load_silero()

        def extract(self, samples, rate):
            return find_regions(self.model, [samples], VADConfig())

    extractor = Regions()
else:
    spec = spec_of(name)
    extractor = spec.build(load_section(spec.config, spec.section, "params.yaml"))
samples, rate = load_audio(path, sampling_rate=extractor.sampling_rate)
extractor.extract(samples[: rate], rate)  # tables built, libraries loaded
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
out = extractor.extract(samples, rate)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"set": name, "before_mb": before / 1024, "peak_mb": peak / 1024, "seconds": seconds}))
"""


def write_long_wav(path: Path, minutes: float, seed: int = 0) -> None:
    """Alternating voiced and silent stretches: harmonics of a wandering pitch, with noise."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    block = 60 * RATE
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as out:
        for begin in range(0, total, block):
            n = min(block, total - begin)
            t = (begin + np.arange(n)) / RATE
            pitch = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
            phase = 2 * np.pi * np.cumsum(pitch) / RATE
            voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
            gate = (np.sin(2 * np.pi * 0.7 * t) > -0.3).astype(np.float32)
            out.write((0.2 * voiced * gate + 0.01 * rng.standard_normal(n)).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=120.0, help="length of the file (default 120)")
    parser.add_argument("--sets", default="vad,handcrafted,opensmile,voice",
                        help="extractors (and vad, the speech-region stage), comma-separated")
    add_results_argument(parser)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    print(f"{platform.machine()} ({cpu_kind()}), {os.cpu_count()} CPUs; a {args.minutes:g}-minute file at {RATE} Hz")
    lines = ["| set | decoded (MB) | peak (MB) | extractor (MB) | time (s) |", "|---|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "long.wav"
        write_long_wav(wav, args.minutes)
        print(f"{'set':<12} {'decoded (MB)':>13} {'peak (MB)':>10} {'extractor (MB)':>15} {'time (s)':>9}")
        for name in args.sets.split(","):
            env = {**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"}
            done = subprocess.run([sys.executable, "-c", CHILD, name, str(wav)], cwd=root, env=env,
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name}: {done.stderr.strip().splitlines()[-1]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{name:<12} {row['before_mb']:>13.0f} {row['peak_mb']:>10.0f} "
                  f"{row['peak_mb'] - row['before_mb']:>15.0f} {row['seconds']:>9.1f}")
            lines.append(f"| {name} | {row['before_mb']:.0f} | {row['peak_mb']:.0f} | "
                         f"{row['peak_mb'] - row['before_mb']:.0f} | {row['seconds']:.1f} |")
    record(args.results, "long_file", f"Memory on one {args.minutes:g}-minute recording at {RATE} Hz (peak RSS of a "
           f"fresh process; extractor: above the decoded signal)", "\n".join(lines))


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s)")
