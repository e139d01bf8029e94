"""split: assign utterances to train/validation/test (speaker-independent by default)."""

from vocalab import plots, stage
from vocalab.manifest import read_manifest
from vocalab.models.config import TrainConfig, check_feature_sets
from vocalab.params import load_section
from vocalab.splits import SplitConfig, assign_splits, fold_names, fold_view, split_summary


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "out", "metrics", "plot")
    config = load_section(SplitConfig, "split", args.params)
    manifest = read_manifest(args.manifest)
    # every train@ stage follows this one: a feature set no stage makes is named here, not by DVC
    check_feature_sets(load_section(TrainConfig, "train", args.params))
    splits = assign_splits(manifest, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    splits.to_csv(args.out, index=False)
    summary = split_summary(splits, manifest, config)
    stage.write_json(args.metrics, summary)
    # speaker_kfold: the balance of fold 0 (every fold's speakers are in the metrics)
    plots.class_balance(manifest, args.plot, splits=fold_view(splits, fold_names(splits)[0]))
    print("split: " + ", ".join(f"{s} {summary[s]['n_utterances']} utts / {summary[s]['n_speakers']} speakers"
                                for s in ("train", "validation", "test"))
          + (f" in fold 0 of {len(summary['folds'])}" if "folds" in summary else "")
          + f"; speaker_overlap={summary['speaker_overlap']}")


if __name__ == "__main__":
    stage.run(main)
