"""manifest: validate every audio file of data/raw into data/manifest.csv (+ rejects)."""

from vocalab import stage
from vocalab.datasets.config import DataConfig
from vocalab.datasets.base import count_other_files
from vocalab.datasets.layouts import scan_corpora
from vocalab.manifest import manifest_summary, write_manifest
from vocalab.manifest_build import build_manifest, merge_manifests
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "raw", "out", "rejects", "metrics")
    config = load_section(DataConfig, "data", args.params)
    manifest, rejects = merge_manifests([build_manifest(candidates, dataset=name)
                                         for name, candidates in scan_corpora(config, args.raw)])
    write_manifest(manifest, args.out)
    rejects.to_csv(args.rejects, index=False)
    summary = manifest_summary(manifest, rejects, n_other_files=count_other_files(args.raw))
    stage.write_json(args.metrics, summary)
    print(f"manifest: {summary['n_utterances']} utterances, {summary['n_speakers']} speakers, "
          f"{summary['n_rejected']} rejected (see {args.rejects})")


if __name__ == "__main__":
    stage.run(main)
