"""evaluate: score a trained model on the held-out test speakers."""

from vocalab import plots, stage
from vocalab.evaluation import evaluate
from vocalab.features.store import FeatureStore
from vocalab.manifest import read_manifest
from vocalab.splits import read_splits
from vocalab.training import load_model


def main() -> None:
    args = stage.parse_args(__doc__, "model", "features", "manifest", "splits", "metrics", "predictions", "plot")
    model, info = load_model(args.model)
    manifest = read_manifest(args.manifest)
    splits = read_splits(args.splits, manifest)
    metrics, predictions, confusion = evaluate(model, info, FeatureStore(args.features), manifest, splits)
    stage.write_json(args.metrics, metrics)
    args.predictions.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(args.predictions, index=False)
    plots.confusion_matrix(
        confusion, info["classes"], args.plot,
        title=f"{info['feature_set']} / {metrics['classifier']}: UAR {metrics['uar']:.3f} "
              f"on {metrics['n_test_speakers']} held-out speakers (chance {metrics['chance_uar']:.3f})",
    )
    print(f"evaluate: {info['feature_set']} accuracy={metrics['accuracy']:.3f} uar={metrics['uar']:.3f} "
          f"macro_f1={metrics['macro_f1']:.3f} (n_test={metrics['n_test']})")


if __name__ == "__main__":
    stage.run(main)
