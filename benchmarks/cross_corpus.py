"""Benchmark: the train x test matrix of a list of corpora (``split.strategy: corpus``).

Each off-diagonal cell trains on one corpus and tests on another, held out whole
(``data.sources`` = the two, ``split.test_corpus`` = the column's), with validation
speakers from the training corpus. Each diagonal cell is the corpus alone, with speaker
k-fold. Only the labels every corpus has are kept: common spellings are aligned first
(anger/angry, happiness/happy, sadness/sad, fear/fearful), the rest are mapped to null
(left out and counted by the manifest). It runs in a scratch copy of the project.

    python benchmarks/cross_corpus.py ../shared/corpora/emodb-2s:emodb synthetic --sets handcrafted egemaps

A corpus is ``PATH:LAYOUT`` (a local corpus and its ``data.layout``) or ``synthetic`` (the
embedded espeak-ng corpus). A cell with the synthetic corpus checks the plumbing only: the
synthetic corpus says nothing about real speech, and neither does a score against it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from bench_project import run, scratch_project, set_param

#: spellings of one emotion in different corpora
ALIASES = {"anger": "angry", "happiness": "happy", "sadness": "sad", "fear": "fearful", "boredom": "bored"}


def parse_corpus(text: str) -> dict:
    if text == "synthetic":
        return {"source": "synthetic", "name": "synthetic"}
    path, _, layout = text.rpartition(":")
    if not path or not Path(path).expanduser().is_dir():
        raise SystemExit(f"cross_corpus: '{text}' is neither 'synthetic' nor PATH:LAYOUT with PATH a folder.")
    folder = Path(path).expanduser().resolve()
    return {"source": "local", "path": str(folder), "layout": layout, "name": folder.name.replace("-", "_")}


def configure(params: dict, sources: list[dict], label_map: dict, sets: list[str], split: dict) -> None:
    local = [Path(s["path"]) for s in sources if s["source"] == "local"]
    root = Path(os.path.commonpath([str(p.parent) for p in local])) if local else None
    entries = [{k: (os.path.relpath(v, root) if k == "path" else v) for k, v in s.items()} for s in sources]
    params["data"] = {**params["data"], "source": "synthetic", "url": None, "sources": entries,
                      "label_map": label_map}
    if root is not None:
        params["data"]["path"] = str(root)
    set_param(params, "train.feature_sets", sets)
    for key, value in split.items():
        set_param(params, f"split.{key}", value)


def repro(root: Path, env: dict, params: dict, *targets: str) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro", *targets], root, env, quiet=True, name="cross_corpus")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+", help="PATH:LAYOUT or synthetic, two or more")
    parser.add_argument("--sets", nargs="+", default=["handcrafted"], help="feature sets (default handcrafted)")
    parser.add_argument("--folds", type=int, default=5, help="speaker folds of the diagonal cells")
    parser.add_argument("--workdir", type=Path, default=None)
    add_results_argument(parser)
    args = parser.parse_args()
    corpora = [parse_corpus(c) for c in args.corpora]
    if len(corpora) < 2:
        raise SystemExit("cross_corpus: give two or more corpora.")
    root, env = scratch_project(args.workdir or Path(tempfile.mkdtemp(prefix="vocalab-cross-")), who="cross_corpus")
    base = yaml.safe_load((root / "params.yaml").read_text())

    configure(base, corpora, {}, args.sets, {"strategy": "speaker"})  # each corpus's own labels first
    repro(root, env, base, "manifest")
    manifest = pd.read_csv(root / "data" / "manifest.csv", dtype=str)
    raw = [set(manifest.loc[manifest["dataset"] == c["name"], "label"]) for c in corpora]
    shared = set.intersection(*({ALIASES.get(label, label) for label in labels} for labels in raw))
    every = set().union(*raw)
    label_map = {label: (ALIASES.get(label, label) if ALIASES.get(label, label) in shared else None)
                 for label in sorted(every)}
    print(f"labels kept: {sorted(shared)}; left out: {sorted(k for k, v in label_map.items() if v is None)}")

    cells: dict[tuple[str, str], dict[str, float]] = {}
    for test in corpora:
        for train in corpora:
            params = yaml.safe_load(yaml.safe_dump(base))
            if train is test:
                configure(params, [test], label_map, args.sets, {"strategy": "speaker_kfold", "folds": args.folds})
            else:
                configure(params, [train, test], label_map, args.sets,
                          {"strategy": "corpus", "test_corpus": test["name"]})
            repro(root, env, params)
            cells[train["name"], test["name"]] = {
                s: json.loads((root / "metrics" / f"{s}.json").read_text())["uar"] for s in args.sets}
    names = [c["name"] for c in corpora]
    lines = []
    for s in args.sets:
        lines += [f"\n{s}: UAR, rows train on, columns test on (diagonal: speaker {args.folds}-fold within the "
                  f"corpus); chance {1 / len(shared):.3f}\n", "| train \\ test | " + " | ".join(names) + " |",
                  "|---|" + "---:|" * len(names)]
        lines += [f"| {train} | " + " | ".join(f"{cells[train, test][s]:.3f}" for test in names) + " |"
                  for train in names]
    if any(c["source"] == "synthetic" for c in corpora):
        lines.append("\nThe synthetic corpus checks the plumbing: its cells are not scores of anything real.")
    print("\n".join(lines))
    record(args.results, f"cross_corpus {' '.join(names)} {' '.join(args.sets)}",
           f"Cross-corpus: {', '.join(names)}; labels kept: {', '.join(sorted(shared))}", "\n".join(lines))


if __name__ == "__main__":
    main()
