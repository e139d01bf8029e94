"""fuse: an early-fusion feature set, the pooled statistics of two others joined by utt_id."""

import argparse
from pathlib import Path

from vocalab import stage
from vocalab.features.fusion import fuse_stores
from vocalab.features.store import FeatureStore
from vocalab.models import TrainConfig
from vocalab.params import load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--name", required=True)
    parser.add_argument("--a", type=Path, required=True)
    parser.add_argument("--b", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = load_section(TrainConfig, "train", args.params)
    meta = fuse_stores(args.name, FeatureStore(args.a), FeatureStore(args.b), args.out,
                       layer_pooling=config.layer_pooling)
    print(f"fuse: {args.name} = {meta['components']['a']['feature_set']} + {meta['components']['b']['feature_set']} "
          f"({2 * len(meta['feature_names'])} statistics per utterance, {len(meta['absent_utt_ids'])} absent)")


if __name__ == "__main__":
    stage.run(main)
