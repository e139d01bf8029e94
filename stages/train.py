"""train: fit the configured model on one feature set's training speakers, chosen on validation speakers."""

from vocalab import plots, stage
from vocalab.features.store import FeatureStore
from vocalab.manifest import read_manifest
from vocalab.models.config import TrainConfig
from vocalab.params import load_section
from vocalab.splits import read_splits
from vocalab.training import SPEAKERS_UNKNOWN, train


def main() -> None:
    args = stage.parse_args(__doc__, "features", "manifest", "splits", "out", "curves", "plot")
    config = load_section(TrainConfig, "train", args.params).for_set(args.features.name)
    manifest = read_manifest(args.manifest)
    info, curves = train(FeatureStore(args.features), manifest, read_splits(args.splits, manifest), config, args.out)
    if info.train.normalize != config.normalize:
        print(f"train: {SPEAKERS_UNKNOWN}.")
    args.curves.parent.mkdir(parents=True, exist_ok=True)
    curves.to_csv(args.curves, index=False)
    plots.training_curves(curves, args.plot, title=f"{info.feature_set} / {config.model}: training")
    if info.kind == "checkpoint":
        from vocalab.models.checkpoint import unreachable_labels

        never = unreachable_labels(info)
        if never:
            print(f"train: the checkpoint's labels map to no utterance of {never}: it never predicts them, and "
                  f"their recall is 0 (train.checkpoint.label_map).")
    first = info.folds[0]
    chosen = "; ".join(f"{f.chosen_candidate.params}" for f in info.folds if f.chosen_candidate.params)
    print(f"train: {config.model} on {info.feature_set} ({len(info.folds)} fold(s); fold 0: "
          f"{first.n_train} utterances, {first.n_train_speakers} speakers, {info.n_features} features)"
          + (f"; chosen on validation speakers: {chosen}" if chosen else ""))


if __name__ == "__main__":
    stage.run(main)
