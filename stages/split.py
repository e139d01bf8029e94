"""split: assign utterances to train/validation/test (speaker-independent by default)."""

from pathlib import Path

from vocalab import plots, stage
from vocalab.manifest import read_manifest
from vocalab.params import load_section
from vocalab.splits import SplitConfig, assign_splits, split_summary


def main() -> None:
    parser = stage.parser(__doc__)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plot", type=Path, required=True)
    args = parser.parse_args()
    config = load_section(SplitConfig, "split", args.params)
    manifest = read_manifest(args.manifest)
    splits = assign_splits(manifest, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    splits.to_csv(args.out, index=False)
    summary = split_summary(splits, manifest, config)
    stage.write_json(args.metrics, summary)
    plots.class_balance(manifest, args.plot, splits=splits)
    print("split: " + ", ".join(f"{s} {summary[s]['n_utterances']} utts / {summary[s]['n_speakers']} speakers"
                                for s in ("train", "validation", "test"))
          + f"; speaker_overlap={summary['speaker_overlap']}")


if __name__ == "__main__":
    stage.run(main)
