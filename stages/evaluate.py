"""evaluate: score the trained model(s) on the held-out test speakers.

Writes the six headline numbers as the DVC metric (``--metrics``) and everything
else (per-class figures, protocol, provenance, validation, per fold) to ``--details``.
"""

from vocalab import plots, stage
from vocalab.evaluation import evaluate, headline
from vocalab.features.store import FeatureStore
from vocalab.manifest import read_manifest
from vocalab.params import load_section, to_dict
from vocalab.splits import SplitConfig, read_splits
from vocalab.training import load_model, load_unknown_speaker_models


def main() -> None:
    args = stage.parse_args(__doc__, "model", "features", "manifest", "splits", "metrics", "details", "predictions",
                            "plot")
    split_config = load_section(SplitConfig, "split", args.params)
    models, info = load_model(args.model)
    manifest = read_manifest(args.manifest)
    splits = read_splits(args.splits, manifest)
    unknown = load_unknown_speaker_models(args.model, info) if info.unknown_speaker_model else None
    metrics, predictions, confusion = evaluate(models, info, FeatureStore(args.features), manifest, splits,
                                               to_dict(split_config), unknown)
    stage.write_json(args.metrics, headline(metrics))
    stage.write_json(args.details, metrics)
    args.predictions.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(args.predictions, index=False)
    spread = f" ± {metrics['folds']['uar_std']:.3f} over {len(models)} folds" if "folds" in metrics else ""
    plots.confusion_matrix(
        confusion, info.labels, args.plot,
        title=f"{info.feature_set} / {metrics['classifier']}: UAR {metrics['uar']:.3f}{spread} "
              f"on {metrics['n_test_speakers']} held-out speakers (chance {metrics['chance_uar']:.3f})",
    )
    alone = (f"; a file of an unknown speaker: uar={metrics['unknown_speaker']['uar']:.3f}"
             if "unknown_speaker" in metrics else "")
    print(f"evaluate: {info.feature_set} accuracy={metrics['accuracy']:.3f} uar={metrics['uar']:.3f}{spread} "
          f"macro_f1={metrics['macro_f1']:.3f} (n_test={metrics['n_test']}){alone}")


if __name__ == "__main__":
    stage.run(main)
