"""fuse: an early-fusion feature set, the pooled features of several others joined by utt_id.

A fusion that no ``train.feature_sets`` entry lists is not built: its store folder
says so, and the run does not wait for it.
"""

from vocalab import stage
from vocalab.errors import ParamsError
from vocalab.features.fusion import fuse_stores
from vocalab.features.store import FeatureStore, write_not_built
from vocalab.models.config import TrainConfig
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "features", "out", names=("name",))
    config = load_section(TrainConfig, "train", args.params)
    if args.name not in config.fusions:
        raise ParamsError(f"'{args.name}' is not a fusion of train.fusions ({', '.join(config.fusions) or 'none'}).")
    if args.name not in config.feature_sets:
        write_not_built(args.out, args.name, "no train.feature_sets entry lists this fusion")
        print(f"fuse: {args.name} is not in train.feature_sets: not built")
        return
    fusion = config.fusions[args.name]
    meta = fuse_stores(args.name, [FeatureStore(args.features / name) for name in fusion.sets], args.out,
                       layer_pooling=config.layer_pooling, weighting=fusion.weighting)
    print(f"fuse: {args.name} = {' + '.join(fusion.sets)} ({len(meta.pooled_names)} pooled features per "
          f"utterance, weighting {fusion.weighting}, {len(meta.absent_utt_ids)} absent)")


if __name__ == "__main__":
    stage.run(main)
