"""Benchmark: vocalab's extractors vs the per-file loops of the notebooks.

For each feature set, the notebook approach and vocalab run on the same files, in
the same process, after a warm-up; every run is timed twice (``--passes``), the passes
interleaved, and its faster pass counts. Prints audio-seconds processed per wall-clock
second and the ratio.

- handcrafted: librosa mfcc/rms/zero_crossing_rate file by file.
- wav2vec2: librosa.load + Wav2Vec2FeatureExtractor + Wav2Vec2Model, one file at
  a time, on the same device, with the model and layers of params.yaml
  (embeddings.wav2vec2): a notebook keeps a middle layer by asking for every hidden state.
- vggish: librosa.load + the VGGish log-mel examples + one forward pass per file through
  torchvggish's own layout (NCHW nn.Sequential), as its ``model(file)`` does, with the
  same weights (embeddings.vggish).
  vocalab also writes the logmel store in the same pass.

    python benchmarks/extraction.py [--sets handcrafted opensmile wav2vec2 vggish] [--limit N] [--workers N]
        [--rate 48000] [--passes 2]
        [--readme README.md]   # rewrite the README's speed table with this run's (make bench does)

- opensmile: opensmile.Smile.process_signal per set (eGeMAPS, ComParE) and level
  (functionals, LLDs) file by file, against one run per set giving both levels.

Needs the manifest of a `dvc repro` run (`make repro`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
from bench_project import rewrite_block
from results import add_results_argument, cpu_kind, record

from vocalab import cpu_kernels
from vocalab.features.extraction import audio_keys, extract_manifest
from vocalab.features.torch_runtime import preferred_workers
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


#: a pinned run: a fresh process pins torch's kernels before torch loads, as the extraction stage does, then
#: unpickles the extractor (which loads its model there) and times the extraction alone
PINNED_CHILD = """
import pickle, sys, time
from vocalab import cpu_kernels
cpu_kernels.pin()
from vocalab.features.extraction import extract_manifest
manifest, extractor, out, workers, cache_root = pickle.load(open(sys.argv[1], "rb"))
start = time.perf_counter()
extract_manifest(manifest, extractor, out, workers=workers, cache_root=cache_root, progress=False)
print(time.perf_counter() - start)
"""


def pinned_run(manifest, extractor, out, workers: int | None, cache_root: Path) -> float:
    """Seconds of the extraction in a fresh process with the stage's portable kernels (:mod:`vocalab.cpu_kernels`)."""
    import pickle
    import subprocess

    job = cache_root.parent / "job.pkl"
    job.write_bytes(pickle.dumps((manifest, extractor, out, workers, cache_root)))
    done = subprocess.run([sys.executable, "-c", PINNED_CHILD, str(job)], capture_output=True, text=True,
                          env={key: value for key, value in os.environ.items() if key not in cpu_kernels.PORTABLE_ENV})
    if done.returncode:
        sys.exit(f"pinned run failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def vocalab_run(manifest, extractor, workers: int | None, outputs=("store",), check=None,
                pinned: bool = False) -> float:
    """Seconds to build the store(s) in a temp dir; ``check(folder)`` reads them before they are deleted.
    ``pinned``: in workers with the stage's portable kernels (one thread each)."""
    tmp = Path(tempfile.mkdtemp(prefix="vocalab-bench-", dir=SCRATCH))
    out = tmp / "store" if outputs == ("store",) else {name: tmp / name for name in outputs}
    if pinned:
        seconds = pinned_run(manifest, extractor, out, workers, tmp / "scratch")
    else:
        start = time.perf_counter()
        extract_manifest(manifest, extractor, out, workers=workers, cache_root=tmp / "scratch", progress=False)
        seconds = time.perf_counter() - start
    if check is not None:
        check(tmp)
    shutil.rmtree(tmp)
    return seconds


def timed(run) -> float:
    """Wall seconds of ``run()``."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


PASSES = 2  # --passes
SCRATCH: Path | None = None  # --scratch: where vocalab's stores and feature cache are written (None: the temp dir)


def best_of_passes(runs: list[tuple[str, callable]]) -> list[tuple[str, float]]:
    """Time every run, then every run again, PASSES times in all, and keep each run's fastest pass.

    A run is ``(label, run)``; ``run(first)`` returns its wall seconds and does its checks when
    ``first`` is true. The passes interleave, so a machine that slows down during the benchmark
    (shared or throttled CPUs drift by 15 % or more within minutes) slows every row alike."""
    best = [float("inf")] * len(runs)
    for i in range(PASSES):
        for k, (_, run) in enumerate(runs):
            best[k] = min(best[k], run(i == 0))
    return [(label, seconds) for (label, _), seconds in zip(runs, best)]


def compared_rows(manifest, device, naive_label: str, naive_loop, vocalab_runs: list, output: str,
                  outputs=("store",)) -> list[tuple[str, float]]:
    """The naive loop and vocalab's runs, best of the passes; the first pass of each run marked
    comparable gets the largest difference of its ``output`` store to the loop's embeddings.

    ``naive_loop()`` returns each file's embeddings (empty for a file it gives nothing);
    ``vocalab_runs`` holds ``(label, extractor, workers, comparable, pinned)``."""
    import torch

    from vocalab.features.store import FeatureStore

    reference: list[np.ndarray] = []
    diffs: dict[str, str] = {}

    def naive(first: bool) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = naive_loop()
        if first:
            reference[:] = out
        return time.perf_counter() - start

    def compare(label: str, folder: Path) -> None:
        store = FeatureStore(folder / output)
        worst = max(float(np.abs(np.asarray(store.sequence(u), dtype=np.float32) - ref).max() / np.abs(ref).max())
                    for u, ref in zip(manifest["utt_id"], reference) if len(ref))
        diffs[label] = f" [rel. diff {worst:.1e}]"

    def vocalab(label: str, extractor, n: int, comparable: bool, pinned: bool):
        return lambda first: vocalab_run(manifest, extractor, workers=n, outputs=outputs, pinned=pinned,
                                         check=(lambda folder: compare(label, folder)) if first and comparable
                                         else None)

    runs = [(naive_label, naive)] + [(run[0], vocalab(*run)) for run in vocalab_runs]
    return [(label + diffs.get(label, ""), seconds) for label, seconds in best_of_passes(runs)]


TABLE: list[dict] = []  # every run of this invocation, for the one table at the end
README_START, README_END = "<!-- make bench: start -->", "<!-- make bench: end -->"


def print_table(title: str, audio_s: float, rows: list[tuple[str, float]], *, n_files: int) -> None:
    """Print one set's runs (the first row is the naive loop) and add them to the final table."""
    naive_s = rows[0][1]
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    print(f"{'':{width}s} {'wall s':>8s} {'audio-s/s':>10s} {'vs naive':>9s}")
    for name, seconds in rows:
        print(f"{name:{width}s} {seconds:8.2f} {audio_s / seconds:10.1f} {naive_s / seconds:8.2f}x")
        TABLE.append({"set": title.split(" ", 1)[0], "files": n_files, "audio_s": audio_s, "run": name,
                      "rate": audio_s / seconds, "ratio": naive_s / seconds})


def markdown_table() -> str:
    lines = ["| set (files, audio s) | run | audio-s/s | vs naive loop |", "|---|---|---:|---:|"]
    for row in TABLE:
        lines.append(f"| {row['set']} ({row['files']}, {row['audio_s']:.0f}) | {row['run']} | {row['rate']:.1f} | "
                     f"{row['ratio']:.2f}× |")
    return "\n".join(lines)


def bench_handcrafted(manifest, params: Path, workers: int) -> None:
    config = load_section(HandcraftedConfig, "features", params)
    paths = manifest["path"].tolist()
    naive_loop(paths[:2], config)  # warm-up: librosa's numba kernels compile on first use
    extractor = HandcraftedExtractor(config)
    rows = best_of_passes([
        ("naive librosa loop (1 process)", lambda first: timed(lambda: naive_loop(paths, config))),
        ("vocalab, 1 worker", lambda first: vocalab_run(manifest, extractor, workers=1)),
        (f"vocalab, {workers} workers (default)", lambda first: vocalab_run(manifest, extractor, workers=workers)),
    ])
    print_table(f"handcrafted ({config})", float(manifest["duration_s"].sum()), rows, n_files=len(manifest))


def naive_wav2vec2_loop(paths: list[str], model, processor, device, layers: list) -> list[np.ndarray]:
    """What the reference notebook does, file by file: the model output, or every hidden state
    (``output_hidden_states=True``) to keep the layers it wants."""
    import torch

    out = []
    want_hidden = any(layer != "last" for layer in layers)
    for path in paths:
        y, _ = librosa.load(path, sr=16000)
        inputs = processor(y, sampling_rate=16000, return_tensors="pt", padding=True)
        with torch.no_grad():
            result = model(inputs.input_values.to(device), output_hidden_states=want_hidden)
        kept = [result.last_hidden_state if layer == "last" else result.hidden_states[layer] for layer in layers]
        out.append(torch.cat(kept, dim=-1).squeeze(0).cpu().numpy())
    return out


def torch_budget(n: int | None, device, pinned: bool = False) -> str:
    """How a run of ``n`` local workers shares this machine's cores (torch_runtime.share_cpu_threads)."""
    if device.type != "cpu":
        return f"{n} process(es), {device.type}"
    if n is None:  # what the stage chooses
        return ("the stage's workers (one per core, fewer for little audio) x 1 thread, kernels pinned to AVX2"
                if pinned else "the stage's workers")
    threads = 1 if pinned else max(1, default_workers() // n)
    return (f"{n} process{'es' if n > 1 else ''} x {threads} thread(s), "
            + ("kernels pinned to AVX2" if pinned else "the CPU's own kernels"))


def torch_runs(config, workers: int, device, extra: list) -> list[tuple]:
    """``(config, workers, pinned, default)`` of the torch runs: the stage's default (portable kernels, one
    single-threaded worker per core, where it pins them), the CPU's own kernels with each thread budget, and
    ``extra`` configs with the CPU's own kernels."""
    if device.type != "cpu":
        return [(config, 1, False, True)] + [(c, 1, False, False) for c in extra]
    own = preferred_workers(device)  # this process does not pin: the count for the CPU's own kernels
    pins = cpu_kernels.can_pin() and cpu_kernels.wants_float32(config.dtype)
    runs = [(config, None, True, True)] if pins else []  # None: the workers the stage would start
    runs += [(config, n, False, not pins and n == own) for n in sorted({own, workers})]
    return runs + [(c, own, False, False) for c in extra]


def bench_wav2vec2(manifest, params: Path, workers: int, extra_dtypes: list[str]) -> None:
    import dataclasses

    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from vocalab.features.wav2vec2 import Wav2Vec2Extractor, Wav2Vec2ExtractorConfig
    from vocalab.features.wav2vec2_source import SECTION, build_model

    config = load_section(Wav2Vec2ExtractorConfig, SECTION, params)
    extractor = Wav2Vec2Extractor(config)
    device = extractor.device
    model = build_model(extractor.source, extractor.hf_config, init=config.init, seed=config.seed).to(device)
    processor = Wav2Vec2FeatureExtractor(do_normalize=extractor.preprocessing["do_normalize"])
    paths = manifest["path"].tolist()
    naive_wav2vec2_loop(paths[:2], model, processor, device, extractor.layers)  # warm-up
    n_layers = extractor.hf_config.num_hidden_layers
    extra = ([dataclasses.replace(config, layers="last")] if extractor.layers != ["last"] else []) + \
        [dataclasses.replace(config, dtype=dtype) for dtype in extra_dtypes]
    vocalab_runs = []
    for run_config, n, pinned, default in torch_runs(config, workers, device, extra):
        run_extractor = extractor if run_config == config else Wav2Vec2Extractor(run_config)
        label = (f"vocalab{' (default)' if default else ''}, {torch_budget(n, device, pinned)}, "
                 f"{run_extractor.meta()['compute_dtype']}, layers {run_extractor.meta()['layers']}")
        vocalab_runs.append((label, run_extractor, n, run_config.layers == config.layers, pinned))
    rows = compared_rows(
        manifest, device,
        f"naive notebook loop ({device.type}, {torch.get_num_threads()} threads; runs all {n_layers} layers, "
        f"keeps {extractor.layers})",
        lambda: naive_wav2vec2_loop(paths, model, processor, device, extractor.layers), vocalab_runs, "store")
    meta = extractor.meta()
    print_table(f"wav2vec2 ({meta['model']}, {'pretrained' if meta['pretrained'] else 'random init'}, "
                f"{device}, batch_s={extractor.batch_s:g})", float(manifest["duration_s"].sum()), rows,
                n_files=len(manifest))
    print("rel. diff: largest |difference| to the notebook loop's embeddings, over the largest |value|, "
          "worst file (float16 storage alone rounds at ~5e-4).")


def torchvggish_model(model, *, post_relu: bool):
    """torchvggish's layout (:mod:`vocalab.testing.vggish_reference`) with the weights of vocalab's
    ``model``: what a notebook's ``model(file)`` runs; called on examples ``[n, 1, 96, 64]``."""
    import functools

    from vocalab.features.vggish_model import KEY_MAP
    from vocalab.testing.vggish_reference import torchvggish_layout

    reference = torchvggish_layout()
    ours = model.state_dict()
    reference.load_state_dict({f"{theirs}.{param}": ours[f"{name}.{param}"].contiguous()
                               for theirs, name in KEY_MAP["torchvggish"].items() for param in ("weight", "bias")})
    return functools.partial(reference.to(next(model.parameters()).device).embed, final_relu=post_relu)


def naive_vggish_loop(paths: list[str], model, device) -> list[np.ndarray]:
    """What the reference notebook does, file by file (clips under 0.975 s give nothing):
    ``model`` is :func:`torchvggish_model`, one forward pass per file."""
    import torch

    from vocalab.features import vggish_frontend as frontend

    out = []
    for path in paths:
        y, _ = librosa.load(path, sr=frontend.SAMPLE_RATE)
        examples = frontend.examples(frontend.log_mel(y))
        with torch.no_grad():
            out.append(model(torch.from_numpy(examples)[:, None].to(device)).cpu().numpy())
    return out


def bench_vggish(manifest, params: Path, workers: int) -> None:
    import dataclasses

    import torch

    from vocalab.features.vggish import SECTION, VGGishExtractor, VGGishExtractorConfig

    config = load_section(VGGishExtractorConfig, SECTION, params)
    extractor = VGGishExtractor(config)
    device = extractor.device
    model = torchvggish_model(extractor._model, post_relu=config.embedding == "post_relu")
    paths = manifest["path"].tolist()
    naive_vggish_loop(paths[:2], model, device)  # warm-up
    vocalab_runs = []
    for run_config, n, pinned, default in torch_runs(config, workers, device,
                                                      [dataclasses.replace(config, dtype="bfloat16")]):
        run_extractor = extractor if run_config == config else VGGishExtractor(run_config)
        label = (f"vocalab{' (default)' if default else ''}, {torch_budget(n, device, pinned)}, {run_config.dtype}, "
                 f"batch {run_config.batch_examples} examples")
        vocalab_runs.append((label, run_extractor, n, True, pinned))
    rows = compared_rows(
        manifest, device, f"naive notebook loop ({device.type}, {torch.get_num_threads()} threads, batch = 1 file)",
        lambda: naive_vggish_loop(paths, model, device), vocalab_runs, "vggish", outputs=("vggish", "logmel"))
    print_table(f"vggish ({'pretrained' if config.init == 'pretrained' else 'random init'}, {device}; "
                f"vocalab also writes logmel)", float(manifest["duration_s"].sum()), rows, n_files=len(manifest))


def naive_opensmile_loop(paths: list[str], config) -> list[tuple[np.ndarray, np.ndarray]]:
    """What the reference notebook does: opensmile.Smile per set and level, file by file."""
    import opensmile

    smiles = [opensmile.Smile(feature_set=opensmile.FeatureSet[name], feature_level=level)
              for name in (config.egemaps, config.compare)
              for level in (opensmile.FeatureLevel.Functionals, opensmile.FeatureLevel.LowLevelDescriptors)]
    out = []
    for path in paths:
        y, _ = librosa.load(path, sr=config.sample_rate)
        out.append(tuple(smile.process_signal(y, config.sample_rate).to_numpy() for smile in smiles))
    return out


def bench_opensmile(manifest, params: Path, workers: int) -> None:
    from vocalab.features.base import SPEECH_REGION
    from vocalab.features.opensmile import SECTION, OpenSmileConfig, OpenSmileExtractor

    config = load_section(OpenSmileConfig, SECTION, params)
    # the stage reads each utterance's speech region; here every region is the whole file, the audio the
    # naive loop reads, so both runs analyse the same samples
    manifest = manifest.assign(**dict(zip(SPEECH_REGION, (0.0, manifest["duration_s"]))))
    paths = manifest["path"].tolist()
    naive_opensmile_loop(paths[:2], config)  # warm-up
    extractor = OpenSmileExtractor(config)
    runs = [("naive loop (opensmile.Smile per set and level, 1 process)",
             lambda first: timed(lambda: naive_opensmile_loop(paths, config)))]
    for n in sorted({1, workers}):
        runs.append((f"vocalab, {n} worker(s), both levels per run" + (" (default)" if n == workers else ""),
                     lambda first, n=n: vocalab_run(manifest, extractor, workers=n, outputs=("egemaps", "compare"))))
    rows = best_of_passes(runs)
    print_table(f"opensmile ({config.egemaps} + {config.compare}, functionals and LLDs)",
                float(manifest["duration_s"].sum()), rows, n_files=len(manifest))


def at_rate(manifest, rate: int):
    """The manifest's files written as 16-bit WAV at ``rate`` in a temp dir (resampled with soxr), and their
    manifest (without the old files' hashes)."""
    import soundfile as sf

    from vocalab.audio import load_audio

    folder = Path(tempfile.mkdtemp(prefix=f"vocalab-bench-{rate}-"))
    paths = []
    for i, path in enumerate(manifest["path"]):
        samples, _ = load_audio(path, sampling_rate=rate)
        target = folder / f"{i:05d}.wav"
        sf.write(target, samples, rate, subtype="PCM_16")
        paths.append(str(target))
    print(f"corpus written at {rate} Hz to {folder}")
    return manifest.assign(path=paths, sample_rate=rate).drop(columns=["audio_hash"], errors="ignore")


def main() -> None:
    global PASSES, SCRATCH
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=Path("data/manifest.csv"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--sets", nargs="+", choices=["handcrafted", "opensmile", "wav2vec2", "vggish"],
                        default=["handcrafted", "opensmile", "wav2vec2", "vggish"])
    parser.add_argument("--readme", type=Path, default=None,
                        help="rewrite the table between this README's 'make bench' markers with this run's")
    add_results_argument(parser)
    parser.add_argument("--limit", type=int, default=None,
                        help="use the first N files only (default: all for handcrafted, 64 for wav2vec2, "
                             "240 for vggish, 80 for opensmile)")
    parser.add_argument("--workers", type=int, default=None, help="default: all usable CPUs")
    parser.add_argument("--wav2vec2-dtypes", nargs="*", default=[],
                        help="extra wav2vec2 runs with these compute dtypes, e.g. bfloat16")
    parser.add_argument("--passes", type=int, default=PASSES,
                        help="time every run this many times, interleaved, and keep each run's fastest")
    parser.add_argument("--rate", type=int, default=None,
                        help="first write the corpus at this sampling rate (e.g. 48000, as most real corpora are), "
                             "into a temp dir, and time on those files")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder on the disk where vocalab writes its stores and feature cache while timed "
                             "(default: the system temp dir); the notebook loop writes nothing")
    args = parser.parse_args()
    PASSES = max(1, args.passes)
    SCRATCH = args.scratch
    if SCRATCH is not None:
        SCRATCH.mkdir(parents=True, exist_ok=True)
    if not args.manifest.is_file():
        sys.exit(f"error: {args.manifest} not found. Run the pipeline first (make repro).")
    manifest = read_manifest(args.manifest, check_files=True)
    if args.rate:
        manifest = at_rate(manifest, args.rate)
    # the manifest stage records each file's hash, once; the extraction stage is what is timed here
    manifest = manifest.assign(audio_hash=audio_keys(manifest))
    workers = args.workers or default_workers()
    print(f"{os.cpu_count()} CPUs, {workers} worker(s)")
    for name in args.sets:
        limit = args.limit or {"wav2vec2": 64, "vggish": 240, "opensmile": 80}.get(name)
        subset = manifest.iloc[:limit] if limit else manifest
        print(f"{name}: {len(subset)} files, {subset['duration_s'].sum():.1f} s of audio")
        if name == "handcrafted":
            bench_handcrafted(subset, args.params, workers)
        elif name == "opensmile":
            bench_opensmile(subset, args.params, workers)
        elif name == "wav2vec2":
            bench_wav2vec2(subset, args.params, workers, args.wav2vec2_dtypes)
        else:
            bench_vggish(subset, args.params, workers)
    table = markdown_table()
    print(f"\n{table}")
    rate = f" written at {args.rate} Hz" if args.rate else ""
    header = (f"`make bench` on {os.cpu_count()} CPUs ({cpu_kind()}), {workers} worker(s), corpus of "
              f"`{args.manifest}`{rate}; audio-seconds per second, same files, same process, after a warm-up, the "
              f"fastest of {PASSES} interleaved passes; vocalab's stores and feature cache written to "
              f"`{SCRATCH or tempfile.gettempdir()}`:")
    record(args.results, "extraction", "Extraction speed against the notebooks' per-file loops", f"{header}\n\n{table}")
    if args.readme:
        rewrite_block(args.readme, README_START, README_END, f"{header}\n\n{table}")
        print(f"wrote the table into {args.readme}")


if __name__ == "__main__":
    main()
