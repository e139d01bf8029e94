"""train: fit the configured classifier on one feature set's training speakers."""

from vocalab import stage
from vocalab.features.store import FeatureStore
from vocalab.manifest import read_manifest
from vocalab.models import TrainConfig
from vocalab.params import load_section
from vocalab.splits import read_splits
from vocalab.training import train


def main() -> None:
    args = stage.parse_args(__doc__, "features", "manifest", "splits", "out")
    config = load_section(TrainConfig, "train", args.params)
    manifest = read_manifest(args.manifest)
    info = train(FeatureStore(args.features), manifest, read_splits(args.splits, manifest), config, args.out)
    print(f"train: {info['train']['model']} on {info['feature_set']} "
          f"({info['n_train']} utterances, {info['n_train_speakers']} speakers, {info['n_features']} features)")


if __name__ == "__main__":
    stage.run(main)
