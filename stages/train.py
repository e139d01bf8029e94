"""train: fit the configured classifier on one feature set's training speakers."""

from pathlib import Path

from vocalab import stage
from vocalab.features.store import FeatureStore
from vocalab.manifest import read_manifest
from vocalab.models import TrainConfig
from vocalab.params import load_section
from vocalab.splits import read_splits
from vocalab.training import train


def main() -> None:
    parser = stage.parser(__doc__)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--splits", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = load_section(TrainConfig, "train", args.params)
    manifest = read_manifest(args.manifest)
    info = train(FeatureStore(args.features), manifest, read_splits(args.splits, manifest), config, args.out)
    print(f"train: {info['train']['model']} on {info['feature_set']} "
          f"({info['n_train']} utterances, {info['n_train_speakers']} speakers, {info['n_features']} features)")


if __name__ == "__main__":
    stage.run(main)
