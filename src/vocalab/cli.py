"""The ``vocalab`` command: ``vocalab predict FILE_OR_FOLDER --model data/models/<set>``, ``vocalab compare BASE
[HEAD]``, ``vocalab cache [prune]``, ``vocalab pipeline``,
``vocalab check``, ``vocalab review BASE [HEAD]``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from vocalab.errors import VocalabError, report
from vocalab.models.normalize import MIN_SPEAKER_FILES


def _revision_arguments(command: argparse.ArgumentParser) -> None:
    """BASE and the optional HEAD of the commands that compare two revisions."""
    command.add_argument("base", help="a git revision (main, HEAD~1, a commit) or a dvc exp name")
    command.add_argument("head", nargs="?", default=None, help="the same (default: the workspace)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vocalab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="label new audio with a trained model",
        description="Label audio files with a model trained by 'dvc repro'. Features are extracted with the "
                    "extractor parameters recorded when the model was trained. Works offline.")
    predict.add_argument("inputs", nargs="+", metavar="FILE_OR_FOLDER", help="audio files, or folders of them")
    predict.add_argument("--model", required=True, help="a trained model folder, e.g. data/models/handcrafted")
    who = predict.add_mutually_exclusive_group()
    who.add_argument("--speaker", metavar="NAME",
                     help="all files are recordings of this one speaker (models trained with train.normalize: "
                          "speaker standardise each speaker with their own statistics)")
    who.add_argument("--speaker-pattern", metavar="REGEX",
                     help="the speaker of each file, from its name: a regex with a 'speaker' group, "
                          "e.g. '^(?P<speaker>\\d+)_'")
    predict.add_argument("--min-speaker-files", type=int, default=MIN_SPEAKER_FILES, metavar="N",
                         help=f"a speaker with fewer files is predicted by the model's unknown-speaker model (fitted "
                              f"under global normalisation) instead of being standardised with their own "
                              f"statistics (default {MIN_SPEAKER_FILES})")
    predict.add_argument("--strict", action="store_true",
                         help="exit 2 if any file gets no prediction (default: only if none does)")
    out = predict.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records")
    out.add_argument("--csv", action="store_true", help="print CSV")
    cache = commands.add_parser(
        "cache", help="the feature cache: its size, or prune it",
        description="Extraction keeps each file's features in a cache keyed by the audio's content and the "
                    "extractor's parameters and code, so a corpus that grows is extracted only where it grew. "
                    "'vocalab cache' shows its size; 'vocalab cache prune' deletes what the last run of each "
                    "extractor did not use (--all: everything). Location: $VOCALAB_CACHE/features "
                    "(default ~/.cache/vocalab/features).")
    cache.add_argument("action", nargs="?", choices=("show", "prune"), default="show")
    cache.add_argument("--all", action="store_true", help="with prune: delete every entry")
    pipeline = commands.add_parser(
        "pipeline", help="write dvc.yaml's extraction stages and code deps from the code",
        description="Writes the extract_<name> stage of every registered extractor and every stage's "
                    "src/vocalab code deps into dvc.yaml (run it in the project root after adding an extractor "
                    "or an import). --check only says whether dvc.yaml is up to date (exit 1 if not).")
    pipeline.add_argument("--check", action="store_true", help="change nothing; exit 1 if dvc.yaml is stale")
    compare = commands.add_parser(
        "compare", help="is a change in UAR real? paired tests between two revisions",
        description="Compares metrics/predictions/<set>.csv of two revisions (git revisions or dvc experiment "
                    "names; HEAD defaults to the files in the workspace), per set on the same test utterances: "
                    "UAR before and after, the difference with a 95 % interval from a paired bootstrap over "
                    "test speakers, and an exact McNemar p-value. Only differences whose interval excludes 0 "
                    "are flagged.")
    review = commands.add_parser(
        "review", help="a change as a reviewer reads it: review/review.md and review/review.html",
        description="Writes one Markdown report (review/review.md) and its HTML twin of the change from BASE to "
                    "HEAD (git revisions or dvc experiment names; HEAD defaults to the workspace): the paired "
                    "comparison of every set (as 'vocalab compare'), HEAD's leaderboard, the per-class recalls "
                    "that changed, only the plots that changed (BASE beside HEAD), and the params that changed. "
                    "Images are local files (inline in the HTML): nothing is uploaded.")
    _revision_arguments(review)
    review.add_argument("--out", default="review", help="the report's folder (default review/, git-ignored)")
    check = commands.add_parser(
        "check", help="what 'dvc repro' needs before any stage runs: params, data.path and its links",
        description="Validates every section of params.yaml, and what DVC looks at before any stage of vocalab "
                    "runs: data.path must be outside the pipeline's outputs, and every link under it must lead "
                    "to a file. 'make repro' runs this first, so these mistakes are named with their fix instead "
                    "of stopping 'dvc repro' with DVC's own error. Run it in the project's root.")
    check.add_argument("--params", default="params.yaml", help="the params file (default params.yaml)")
    _revision_arguments(compare)
    return parser


def compare_command(base: str, head: str | None) -> int:
    from pathlib import Path

    from vocalab.compare import WORKTREE, compare_revisions, table

    try:
        rows, only = compare_revisions(Path.cwd(), base, head or WORKTREE)
    except VocalabError as err:
        return report(err)
    print(table(rows, base, head or WORKTREE), end="")
    for line in only:
        print(f"compare: not compared: {line}")
    return 0


def review_command(base: str, head: str | None, out: str) -> int:
    from pathlib import Path

    from vocalab.compare import WORKTREE
    from vocalab.review import review

    try:
        md, page = review(Path.cwd(), base, head or WORKTREE, Path(out))
    except VocalabError as err:
        return report(err)
    print(f"review: wrote {md} and {page}")
    return 0


def check_command(params: str) -> int:
    from vocalab.preflight import check_project

    try:
        print(check_project(".", params=params))
    except VocalabError as err:
        return report(err)
    return 0


def pipeline_command(check: bool) -> int:
    from pathlib import Path

    from vocalab.pipeline import DVC_YAML, write

    root = Path.cwd()
    if not (root / DVC_YAML).is_file():
        return report(VocalabError(f"no {DVC_YAML} in {root}: run 'vocalab pipeline' in the project's root."))
    current = write(root, check=check)
    if current:
        print(f"pipeline: {DVC_YAML} is up to date")
        return 0
    print(f"pipeline: {DVC_YAML} {'is stale: run vocalab pipeline' if check else 'written'}")
    return 1 if check else 0


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return ""


def cache_command(action: str, everything: bool) -> int:
    from vocalab.features import cache

    root = cache.cache_root()
    if action == "prune":
        entries, freed = cache.prune(root, everything=everything)
        print(f"cache: deleted {entries} entries ({_size(freed)}) from {root}")
    rows = cache.usage(root)
    print(f"cache: {root}: {sum(r.entries for r in rows)} entries, {_size(sum(r.bytes for r in rows))}")
    for row in rows:
        used = "used by the last run" if row.last_run else "not used by the last run"
        print(f"  {row.extractor:<12} {row.fingerprint}  {row.entries:>7} entries  {_size(row.bytes):>9}  {used}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "cache":
        return cache_command(args.action, args.all)
    if args.command == "pipeline":
        return pipeline_command(args.check)
    if args.command == "review":
        return review_command(args.base, args.head, args.out)
    if args.command == "check":
        return check_command(args.params)
    if args.command == "compare":
        return compare_command(args.base, args.head)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # predicting never downloads a model
    from vocalab import cpu_kernels

    cpu_kernels.pin()  # before torch loads: features computed as the stores' were
    from vocalab.predict import predict

    try:
        table = predict(args.inputs, args.model, speaker=args.speaker, speaker_pattern=args.speaker_pattern,
                        min_speaker_files=args.min_speaker_files)
    except VocalabError as err:
        return report(err)
    problems = table.loc[table["problem"] != "", ["file", "problem"]]
    for _, row in problems.iterrows():
        print(f"predict: no prediction for {row['file']}: {row['problem']}", file=sys.stderr)
    if len(problems) == len(table):
        return report(VocalabError(f"none of the {len(table)} file(s) could be predicted (reasons above)."))
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
    elif args.csv:
        print(table.to_csv(index=False), end="")
    else:
        print(table.drop(columns="problem").loc[table["problem"] == ""].to_string(
            index=False, float_format=lambda v: f"{v:.3f}"))
    return 2 if args.strict and len(problems) else 0


if __name__ == "__main__":
    sys.exit(main())
