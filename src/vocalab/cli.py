"""The ``vocalab`` command: ``vocalab predict FILE_OR_FOLDER --model data/models/<set>``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from vocalab.errors import VocalabError, report
from vocalab.models.normalize import MIN_SPEAKER_FILES


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
                         help=f"a speaker with fewer files is standardised with the average training speaker's "
                              f"statistics instead of their own (default {MIN_SPEAKER_FILES})")
    predict.add_argument("--strict", action="store_true",
                         help="exit 2 if any file gets no prediction (default: only if none does)")
    out = predict.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records")
    out.add_argument("--csv", action="store_true", help="print CSV")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # predicting never downloads a model
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
