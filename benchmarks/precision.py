"""Benchmark: does computing the embeddings in bfloat16 change the results?

Runs the wav2vec 2.0 and VGGish branches on a corpus you name with speaker k-fold, in a
scratch copy of the project, once with ``dtype: float32`` and once with ``dtype:
bfloat16`` (the fast path on CPUs with AVX-512 BF16 or AMX, and on CUDA), and compares
what each gives:

- pooled statistics: for each utterance, the largest difference to float32 over the largest
  float32 value of that utterance (worst utterance and median), and the largest difference
  over the spread of its feature across the corpus (what a standardised classifier sees);
- test predictions: the share of utterances whose predicted class is the same, and the UAR
  of each run (every utterance is predicted once, by the fold that held its speaker out).

    python benchmarks/precision.py ../shared/corpora/emodb-2s --layout emodb
    python benchmarks/precision.py CORPUS --layout ravdess --sets wav2vec2 --workdir /tmp/precision \\
        -S embeddings.wav2vec2.init=pretrained

On a CPU without native bfloat16 the bfloat16 run is emulated and slower than float32;
its numbers still say how far bfloat16 moves the features and the predictions. The
extraction times are those of the machine it ran on, with a feature cache of the workdir's
own (cold in a new workdir).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench_project import run, scratch_project, set_param

DTYPES = ("float32", "bfloat16")
#: the params section of each feature set's extractor
SECTIONS = {"wav2vec2": "embeddings.wav2vec2", "vggish": "embeddings.vggish"}


def pooled(root: Path, name: str) -> tuple[list[str], np.ndarray]:
    """utt_ids and pooled statistics of the store of ``name``."""
    store = root / "data" / "features" / name
    return (store / "utt_ids.txt").read_text(encoding="utf-8").splitlines(), np.load(store / "pooled.npy")


def compare_pooled(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """How far ``other`` is from ``reference`` (utterances x features)."""
    difference = np.abs(other.astype(np.float64) - reference)
    scale = np.abs(reference).max(axis=1)
    per_utterance = difference.max(axis=1) / np.where(scale > 0, scale, 1.0)
    spread = reference.std(axis=0)
    in_spread = difference / np.where(spread > 0, spread, 1.0)
    return {"worst": float(per_utterance.max()), "median": float(np.median(per_utterance)),
            "spread": float(in_spread.max())}


def uar(predictions: pd.DataFrame) -> float:
    recalls = [(group["predicted"] == label).mean() for label, group in predictions.groupby("actual")]
    return float(np.mean(recalls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="the corpus root (read only)")
    parser.add_argument("--layout", required=True, help="data.layout of the corpus, e.g. emodb, ravdess, folders")
    parser.add_argument("--sets", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any other params.yaml key, as in dvc exp run -S (value in YAML)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch project folder (default: a temp dir, removed)")
    args = parser.parse_args()
    corpus = args.corpus.expanduser().resolve()
    if not corpus.is_dir():
        sys.exit(f"precision: corpus folder '{args.corpus}' does not exist. Give the root of a corpus on disk.")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vocalab-precision-"))
    root, env = scratch_project(workdir, who="precision")
    # a feature cache of its own, so the extraction times are of this run (cold in a new workdir)
    env["VOCALAB_CACHE"] = str(workdir / "feature-cache")
    params = yaml.safe_load((root / "params.yaml").read_text())
    for override in args.overrides:
        key, _, value = override.partition("=")
        set_param(params, key, yaml.safe_load(value))
    for key, value in {"data.source": "local", "data.path": str(corpus), "data.layout": args.layout,
                       "split.strategy": "speaker_kfold", "split.folds": args.folds,
                       "train.feature_sets": list(args.sets), "train.fusions": {}}.items():
        set_param(params, key, value)

    results: dict[str, dict[str, dict]] = {name: {} for name in args.sets}
    for dtype in DTYPES:
        for name in args.sets:
            set_param(params, f"{SECTIONS[name]}.dtype", dtype)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run([sys.executable, "-m", "dvc", "repro", "split"], root, env, name="precision")
        for name in args.sets:
            print(f"precision: {name} in {dtype}, {args.folds} speaker folds", flush=True)
            start = time.perf_counter()
            run([sys.executable, "-m", "dvc", "repro", "--single-item", f"extract_{name}"], root, env,
                name="precision")
            seconds = time.perf_counter() - start
            run([sys.executable, "-m", "dvc", "repro", f"evaluate@{name}"], root, env, name="precision")
            utt_ids, matrix = pooled(root, name)
            predictions = pd.read_csv(root / "metrics" / "predictions" / f"{name}.csv", dtype={"utt_id": str})
            results[name][dtype] = {"utt_ids": utt_ids, "pooled": matrix, "seconds": seconds,
                                    "predictions": predictions.set_index("utt_id")["predicted"],
                                    "uar": uar(predictions)}

    model = params["train"]["model"]
    print(f"\n{corpus.name}: {args.folds} speaker folds, train.model {model}"
          + (f", {' '.join(args.overrides)}" if args.overrides else "")
          + "; bfloat16 against float32, the same files")
    print("| set | pooled: worst utterance | median | max / feature spread | same prediction | "
          "UAR float32 | UAR bfloat16 | extraction s (float32, bfloat16) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        reference, other = runs["float32"], runs["bfloat16"]
        if reference["utt_ids"] != other["utt_ids"]:
            sys.exit(f"precision: the {name} stores of the two runs hold different utterances.")
        distance = compare_pooled(reference["pooled"], other["pooled"])
        shared = reference["predictions"].index
        same = float((other["predictions"].reindex(shared) == reference["predictions"]).mean())
        print(f"| {name} | {distance['worst']:.1e} | {distance['median']:.1e} | {distance['spread']:.1e} | "
              f"{same:.1%} ({len(shared)}) | {reference['uar']:.3f} | {other['uar']:.3f} | "
              f"{reference['seconds']:.0f}, {other['seconds']:.0f} |")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
