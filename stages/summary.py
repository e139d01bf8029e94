"""summary: one leaderboard across feature sets (JSON, Markdown table, comparison plot)."""

from vocalab import plots, stage
from vocalab.manifest import read_manifest
from vocalab.models.config import TrainConfig
from vocalab.params import load_section
from vocalab.splits import SplitConfig, read_splits
from vocalab.summary import leaderboard_markdown, summarise


def main() -> None:
    args = stage.parse_args(__doc__, "predictions", "models", "manifest", "splits", "out", "table", "plot")
    config = load_section(TrainConfig, "train", args.params)
    splits = read_splits(args.splits, read_manifest(args.manifest))
    split = load_section(SplitConfig, "split", args.params)
    summary = summarise(config.feature_sets, args.predictions, args.models, splits,
                        test_corpus=split.test_corpus if split.strategy == "corpus" else None)
    stage.write_json(args.out, summary)
    args.table.write_text(leaderboard_markdown(summary), encoding="utf-8")
    plots.comparison(summary, args.plot)
    print("summary: " + ", ".join(f"{name} {row['uar']:.3f}" for name, row in summary.items()))


if __name__ == "__main__":
    stage.run(main)
