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
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench_project import add_corpus_arguments, corpus_project, run, set_param
from vocalab.features.store import FeatureStore
from vocalab.metrics import uar

DTYPES = ("float32", "bfloat16")
#: the params section of each feature set's extractor
SECTIONS = {"wav2vec2": "embeddings.wav2vec2", "vggish": "embeddings.vggish"}


def compare_pooled(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """How far ``other`` is from ``reference`` (utterances x features)."""
    difference = np.abs(other.astype(np.float64) - reference)
    scale = np.abs(reference).max(axis=1)
    per_utterance = difference.max(axis=1) / np.where(scale > 0, scale, 1.0)
    spread = reference.std(axis=0)
    in_spread = difference / np.where(spread > 0, spread, 1.0)
    return {"worst": float(per_utterance.max()), "median": float(np.median(per_utterance)),
            "spread": float(in_spread.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_corpus_arguments(parser)
    parser.add_argument("--sets", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    add_results_argument(parser)
    args = parser.parse_args()
    root, env, params, corpus = corpus_project(args, "precision")
    # a feature cache of its own, so the extraction times are of this run (cold in a new workdir)
    env["VOCALAB_CACHE"] = str(root / "feature-cache")
    set_param(params, "train.feature_sets", list(args.sets))
    set_param(params, "train.fusions", {})

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
            store = FeatureStore(root / "data" / "features" / name)
            predictions = pd.read_csv(root / "metrics" / "predictions" / f"{name}.csv", dtype={"utt_id": str})
            results[name][dtype] = {"utt_ids": store.utt_ids, "pooled": np.array(store.pooled), "seconds": seconds,
                                    "predictions": predictions.set_index("utt_id")["predicted"],
                                    "uar": uar(predictions["actual"], predictions["predicted"])}

    model = params["train"]["model"]
    title = (f"{corpus.name}: {args.folds} speaker folds, train.model {model}"
             + (f", {' '.join(args.overrides)}" if args.overrides else "") + "; bfloat16 against float32, the same files")
    lines = ["| set | pooled: worst utterance | median | max / feature spread | same prediction | "
             "UAR float32 | UAR bfloat16 | extraction s (float32, bfloat16) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, runs in results.items():
        reference, other = runs["float32"], runs["bfloat16"]
        if reference["utt_ids"] != other["utt_ids"]:
            sys.exit(f"precision: the {name} stores of the two runs hold different utterances.")
        distance = compare_pooled(reference["pooled"], other["pooled"])
        shared = reference["predictions"].index
        same = float((other["predictions"].reindex(shared) == reference["predictions"]).mean())
        lines.append(f"| {name} | {distance['worst']:.1e} | {distance['median']:.1e} | {distance['spread']:.1e} | "
                     f"{same:.1%} ({len(shared)}) | {reference['uar']:.3f} | {other['uar']:.3f} | "
                     f"{reference['seconds']:.0f}, {other['seconds']:.0f} |")
    print(f"\n{title}\n" + "\n".join(lines))
    record(args.results, f"precision {corpus.name} {' '.join(args.sets)}", f"bfloat16: {title}", "\n".join(lines))
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
