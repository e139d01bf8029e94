"""Benchmark: a corpus of 20,000 short clips that grows by 1 %.

Generates a ``folders`` corpus of short clips (speech-like harmonics and noise,
16 kHz) in a scratch copy of the project, runs the real DVC stages on it (the timed
extractions cold, then every other stage of the default feature sets), times a no-op
``dvc status`` of the whole project, then adds 1 % new clips and times the data and
extraction stages again: in a project whose pipeline has run whole, as a user's has,
so DVC's work around each stage is that of the full ``dvc.lock``.
Every step runs under ``/usr/bin/time -v`` for its wall time and peak memory (the
largest process). So that the whole pipeline runs in minutes on 20,000 clips,
wav2vec 2.0 is a small random model (:mod:`vocalab.testing.wav2vec2_tiny`) and the
classifier is ``logreg``; neither changes what ``dvc status`` has to look at.

    python benchmarks/scale.py                       # 20,000 clips, handcrafted and vggish
    python benchmarks/scale.py --clips 2000 --sets handcrafted --workdir /tmp/scale
    python benchmarks/scale.py                       # and write the table into benchmarks/RESULTS.md

The feature cache of the run lives in the work folder, so the first extraction is
cold. ``stage s`` is the extraction stage's own report (decode, extract, assemble);
``wall s`` adds DVC's work around it (hashing the store, the lock). The corpus grows
``--rounds`` times by 1 % of its first size and each step after adding is reported as
the median of those rounds, with their range: one run on a CPU whose speed drifts says
little about a step of a few seconds. The no-op ``dvc status`` is timed five times.
Below the table, each target is checked against these numbers, and the time DVC takes
to read and rewrite this project's ``dvc.lock`` (which it does after every stage it
runs) is measured on a copy of it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import statistics
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from bench_project import scratch_project, set_param
from results import add_results_argument, record

from vocalab.testing.wav2vec2_tiny import save_tiny_wav2vec2

LABELS = ("calm", "tense", "happy", "sad")


def clip(index: int, rate: int = 16000) -> np.ndarray:
    """A short speech-like clip: a voiced harmonic series with a moving pitch, and breath noise."""
    rng = np.random.default_rng(index)
    duration = rng.uniform(0.6, 1.4)
    t = np.arange(int(duration * rate)) / rate
    f0 = rng.uniform(90, 260) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(np.pi * t / duration) * 1.5, 0, 1)
    return (0.2 * envelope * voice + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_clips(corpus: Path, start: int, count: int, speakers: int = 40) -> None:
    for i in range(start, start + count):
        path = corpus / LABELS[i % len(LABELS)] / f"spk{i % speakers:02d}_{i:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, clip(i), 16000, subtype="PCM_16")


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident MB and output of a command run under /usr/bin/time -v."""
    result = subprocess.run(["/usr/bin/time", "-v", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(f"scale: '{' '.join(args)}' failed:\n{result.stdout[-4000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", result.stdout)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    peak_kb = float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stdout).group(1))
    return hours * 3600 + minutes * 60 + seconds, peak_kb / 1024, result.stdout


def stage_seconds(output: str, stage: str) -> float | None:
    found = re.search(rf"{stage}: \d+ utterances, [\d.]+ s of audio in ([\d.]+) s", output)
    return float(found.group(1)) if found else None


def lock_rewrite_seconds(lock: Path, repeats: int = 3) -> tuple[int, float, float]:
    """Entries, size (KB) and the fastest time of DVC's own read-modify-write of ``lock``, on a copy.

    DVC updates ``dvc.lock`` through ``modify_yaml`` (a round-trip YAML load and dump of the
    whole file) after every stage it runs, so this is a fixed cost of each stage rerun that
    grows with the number of stages and their dependencies.
    """
    from dvc.utils.serialize import modify_yaml

    data = yaml.safe_load(lock.read_text())
    entries = sum(len(stage.get("deps", [])) + len(stage.get("outs", [])) for stage in data["stages"].values())
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "dvc.lock"
        shutil.copy2(lock, copy)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            with modify_yaml(copy) as contents:
                contents["stages"] = contents["stages"]  # what DVC does to one stage's entry, as far as time goes
            best = min(best, time.perf_counter() - started)
    return entries, lock.stat().st_size / 1024, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20000)
    parser.add_argument("--grow", type=float, default=0.01, help="fraction of new clips added (default 1 %%)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the corpus grows by --grow of its first size; each step after adding is "
                             "reported as their median (default 3)")
    parser.add_argument("--sets", nargs="+", default=["handcrafted", "vggish"], choices=["handcrafted", "vggish"],
                        help="the extraction stages timed cold and after adding (the others run after)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp dir, removed)")
    add_results_argument(parser)
    args = parser.parse_args()
    if not Path("/usr/bin/time").is_file():
        sys.exit("scale: needs /usr/bin/time (Debian: apt-get install time) for wall time and peak memory.")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vocalab-scale-"))
    corpus = workdir / "corpus-audio"
    root, env = scratch_project(workdir / "project", who="scale")
    env = {**env, "VOCALAB_CACHE": str(workdir / "cache")}
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    set_param(params, "data.source", "local")
    set_param(params, "data.path", str(corpus))
    set_param(params, "data.layout", "folders")
    set_param(params, "train.model", "logreg")
    set_param(params, "embeddings.wav2vec2.init", "pretrained")
    set_param(params, "embeddings.wav2vec2.model", str(save_tiny_wav2vec2(workdir / "tiny-wav2vec2")))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    started = time.perf_counter()
    shutil.rmtree(corpus, ignore_errors=True)
    write_clips(corpus, 0, args.clips)
    print(f"scale: {args.clips} clips generated in {time.perf_counter() - started:.0f} s", flush=True)
    dvc = [sys.executable, "-m", "dvc"]
    rows: list[tuple[str, float, float | None, float, str]] = []  # name, wall, stage s, peak MB, range

    def run_stage(stage: str) -> tuple[float, float | None, float]:
        wall, peak, output = timed([*dvc, "repro", "--single-item", stage], root, env)
        return wall, stage_seconds(output, stage), peak

    def step(name: str, stage: str) -> None:
        wall, stage_s, peak = run_stage(stage)
        rows.append((name, wall, stage_s, peak, ""))
        print(f"scale: {name}: {wall:.1f} s wall, {peak:.0f} MB peak", flush=True)

    step(f"download (index {args.clips} clips)", "download")
    step("manifest", "manifest")
    for name in args.sets:
        step(f"extract_{name}, cold", f"extract_{name}")
    wall, peak, _ = timed([*dvc, "repro"], root, env)
    rows.append(("every other stage of the pipeline (tiny wav2vec 2.0, logreg)", wall, None, peak, ""))
    print(f"scale: every other stage: {wall:.1f} s wall, {peak:.0f} MB peak", flush=True)
    n_stages = len(yaml.safe_load((root / "dvc.lock").read_text())["stages"])
    statuses = []
    for _ in range(5):
        wall, peak, output = timed([*dvc, "status"], root, env)
        if "Data and pipelines are up to date" not in output:
            sys.exit(f"scale: 'dvc status' after a full 'dvc repro' is not a no-op:\n{output[-4000:]}")
        statuses.append((wall, peak))
    walls = sorted(wall for wall, _ in statuses)
    status_s = statistics.median(walls)
    rows.append((f"no-op `dvc status`, all {n_stages} stages up to date (median of {len(walls)})", status_s, None,
                 max(peak for _, peak in statuses), f"{walls[0]:.1f}–{walls[-1]:.1f}"))
    added = max(1, int(round(args.clips * args.grow)))
    grown = ["download", "manifest", *(f"extract_{name}" for name in args.sets)]
    runs: dict[str, list[tuple[float, float | None, float]]] = {stage: [] for stage in grown}
    for round_ in range(args.rounds):
        write_clips(corpus, args.clips + round_ * added, added)
        for stage in grown:
            runs[stage].append(run_stage(stage))
            wall, _, peak = runs[stage][-1]
            print(f"scale: round {round_ + 1}, {stage} after adding {added} clips: {wall:.1f} s wall, "
                  f"{peak:.0f} MB peak", flush=True)
    for stage in grown:
        walls = [wall for wall, _, _ in runs[stage]]
        stage_s = [s for _, s, _ in runs[stage] if s is not None]
        spread = f"{min(walls):.1f}–{max(walls):.1f}" if len(walls) > 1 else ""
        rows.append((f"{stage}, after adding {added} clips (median of {len(walls)})", statistics.median(walls),
                     statistics.median(stage_s) if stage_s else None, max(p for _, _, p in runs[stage]), spread))

    n_audio = sum(1 for _ in corpus.rglob("*.wav"))
    header = (f"`python benchmarks/scale.py` on {os.cpu_count()} CPUs ({platform.machine()}): a `folders` corpus of "
              f"{args.clips} clips of 0.6–1.4 s, then {added} more, {args.rounds} times ({n_audio} in all); real "
              f"`dvc repro` of each stage, wall time and peak memory from `/usr/bin/time -v`:")
    lines = ["| step | wall s | range s | stage s | peak MB |", "|---|---:|---:|---:|---:|"]
    for name, wall_s, stage_s, peak_mb, spread in rows:
        lines.append(f"| {name} | {wall_s:.1f} | {spread} | {'' if stage_s is None else f'{stage_s:.1f}'} "
                     f"| {peak_mb:.0f} |")
    verdicts = []
    for name in args.sets:
        cold = next(r for r in rows if r[0] == f"extract_{name}, cold")
        warm = next(r for r in rows if r[0].startswith(f"extract_{name}, after adding"))
        lines.append(f"| extract_{name}: after adding / cold | {warm[1] / cold[1]:.1%} | | "
                     f"{(warm[2] or 0) / (cold[2] or 1):.1%} | |")
        allowed = 0.05 * cold[1] + 2.0
        verdicts.append(f"- extract_{name} after adding {args.grow * 100:g} %: {warm[1]:.1f} s against 5 % of the cold "
                        f"{cold[1]:.1f} s plus 2 s ({allowed:.1f} s): {'met' if warm[1] <= allowed else 'not met'}.")
    verdicts.append(f"- no-op `dvc status`: {status_s:.1f} s against 2 s: {'met' if status_s < 2 else 'not met'}.")
    n_entries, lock_kb, lock_s = lock_rewrite_seconds(root / "dvc.lock")
    verdicts.append(f"- DVC reads and rewrites `dvc.lock` ({lock_kb:.0f} KB, {n_entries} dependency and output "
                    f"entries) after each stage it runs: {lock_s:.2f} s of every stage's wall time here.")
    table = "\n".join(lines) + "\n\n" + "\n".join(verdicts)
    print(f"\n{header}\n\n{table}")
    record(args.results, "scale", "A corpus that grows", f"{header}\n\n{table}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
