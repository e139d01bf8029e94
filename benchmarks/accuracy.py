"""Benchmark: speaker-independent accuracy of the feature sets on a real corpus.

Runs the pipeline with speaker k-fold on a corpus you name, in a scratch copy of
the project (your ``data/`` and ``metrics/`` are not touched), once per
normalisation, and prints one table: feature set, normalisation, UAR ± its std
over the folds, macro-F1, accuracy.

    python benchmarks/accuracy.py ../shared/corpora/emodb-2s --layout emodb
    python benchmarks/accuracy.py CORPUS --layout ravdess --sets handcrafted egemaps compare+voice \\
        --normalize speaker global --folds 5 -S train.svm.C=10 --workdir /tmp/acc

A set named ``a+b+...`` that ``train.fusions`` does not declare is the fusion of those
sets, with ``--weighting`` (default equal). Every utterance is predicted once, by the model of the fold that held its speaker
out; the UAR is that of the pooled predictions, the std is across the folds. A
``--workdir`` that is kept between runs reuses the features already extracted
(DVC reruns only what a change affects). ``make accuracy CORPUS=... LAYOUT=...``
runs the first line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from bench_project import add_corpus_arguments, corpus_project, run, set_param
from vocalab.model_info import ModelInfo
from vocalab.summary import RANDOM_MARK
from results import add_results_argument, record

def metrics_row(path: Path) -> dict:
    """Pooled UAR, macro-F1 and accuracy of ``metrics/<set>.json``, and the std of UAR over folds."""
    metrics = json.loads(path.read_text())
    return {key: metrics[key] for key in ("uar", "uar_std", "macro_f1", "accuracy", "n_test")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_corpus_arguments(parser)
    parser.add_argument("--sets", nargs="+", default=None,
                        help="feature sets (default: train.feature_sets of params.yaml); a+b+... not in "
                             "train.fusions is the fusion of those sets")
    parser.add_argument("--weighting", choices=["equal", "none"], default="equal",
                        help="weighting of the fusions --sets defines (default: equal)")
    parser.add_argument("--normalize", nargs="+", default=["speaker", "global"], choices=["speaker", "global"])
    add_results_argument(parser)
    args = parser.parse_args()
    root, env, params, corpus = corpus_project(args, "accuracy")
    sets = args.sets or params["train"]["feature_sets"]
    declared = params["train"].get("fusions") or {}
    fusions = {name: declared.get(name) or {"sets": name.split("+"), "weighting": args.weighting}
               for name in sets if name in declared or "+" in name}
    set_param(params, "train.feature_sets", list(sets))
    set_param(params, "train.fusions", fusions)

    rows = []
    targets = [f"evaluate@{name}" for name in sets]
    for normalize in args.normalize:
        set_param(params, "train.normalize", normalize)
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        print(f"accuracy: {', '.join(sets)} with {normalize} normalisation, {args.folds} speaker folds", flush=True)
        run([sys.executable, "-m", "dvc", "repro", *targets], root, env, name="accuracy")
        for name in sets:
            shown = f"{name} {RANDOM_MARK}" if ModelInfo.read(root / "data" / "models" / name).random_init_network \
                else name
            rows.append({"set": shown, "normalize": normalize, **metrics_row(root / "metrics" / f"{name}.json")})

    model = params["train"]["model"]
    others = [o for o in args.overrides if not o.startswith("train.model=")]
    title = f"{corpus.name}: {args.folds} speaker folds, train.model {model}" + (f", {' '.join(others)}" if others else "")
    lines = ["| features | normalisation | UAR (± std over folds) | macro-F1 | accuracy |", "|---|---|---:|---:|---:|"]
    for row in sorted(rows, key=lambda r: (-r["uar"])):
        lines.append(f"| {row['set']} | {row['normalize']} | {row['uar']:.3f} ± {row['uar_std']:.3f} | "
                     f"{row['macro_f1']:.3f} | {row['accuracy']:.3f} |")
    print(f"\n{title}\n" + "\n".join(lines))
    record(args.results, f"accuracy {corpus.name} {' '.join(sets)} {' '.join(args.overrides)}".strip(),
           f"Accuracy: {title}", "\n".join(lines))
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
