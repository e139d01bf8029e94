"""durations: duration statistics, short-clip counts and class balance, with plots."""

from vocalab import plots, stage
from vocalab.durations import VGGISH_WINDOW_S, duration_report
from vocalab.manifest import read_manifest


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "metrics", "histogram", "balance")
    manifest = read_manifest(args.manifest)
    report = duration_report(manifest, short_threshold_s=VGGISH_WINDOW_S)
    stage.write_json(args.metrics, report)
    plots.duration_histogram(manifest, args.histogram, short_threshold_s=VGGISH_WINDOW_S)
    plots.class_balance(manifest, args.balance)
    overall = report["overall"]
    print(f"durations: {overall['count']} clips, mean {overall['mean_s']:.2f} s "
          f"[{overall['min_s']:.2f}, {overall['max_s']:.2f}], "
          f"{report['short_clips']['count']} shorter than {VGGISH_WINDOW_S} s")


if __name__ == "__main__":
    stage.run(main)
