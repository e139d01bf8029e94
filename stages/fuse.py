"""fuse: an early-fusion feature set, the pooled features of two others joined by utt_id."""

from vocalab import stage
from vocalab.features.fusion import fuse_stores
from vocalab.features.store import FeatureStore
from vocalab.models.config import TrainConfig
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "a", "b", "out", names=("name",))
    config = load_section(TrainConfig, "train", args.params)
    meta = fuse_stores(args.name, FeatureStore(args.a), FeatureStore(args.b), args.out,
                       layer_pooling=config.layer_pooling)
    a, b = meta.components
    print(f"fuse: {args.name} = {a.feature_set} + {b.feature_set} "
          f"({len(meta.pooled_names)} pooled features per utterance, {len(meta.absent_utt_ids)} absent)")


if __name__ == "__main__":
    stage.run(main)
