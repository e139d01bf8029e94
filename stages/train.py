"""train: fit the configured model on one feature set's training speakers, chosen on validation speakers."""

from vocalab import stage
from vocalab.features.store import FeatureStore
from vocalab.manifest import read_manifest
from vocalab.models import TrainConfig
from vocalab.params import load_section
from vocalab.splits import read_splits
from vocalab.training import train


def main() -> None:
    args = stage.parse_args(__doc__, "features", "manifest", "splits", "out", "curves")
    config = load_section(TrainConfig, "train", args.params)
    manifest = read_manifest(args.manifest)
    info, curves = train(FeatureStore(args.features), manifest, read_splits(args.splits, manifest), config, args.out)
    args.curves.parent.mkdir(parents=True, exist_ok=True)
    curves.to_csv(args.curves, index=False)
    folds = info["folds"]
    chosen = "; ".join(f"{f['chosen_params']}" for f in folds if f["chosen_params"])
    print(f"train: {info['train']['model']} on {info['feature_set']} ({len(folds)} fold(s); fold 0: "
          f"{info['n_train']} utterances, {info['n_train_speakers']} speakers, {info['n_features']} features)"
          + (f"; chosen on validation speakers: {chosen}" if chosen else ""))


if __name__ == "__main__":
    stage.run(main)
