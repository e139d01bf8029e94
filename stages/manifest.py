"""manifest: validate every audio file of data/raw into data/manifest.csv (+ rejects)."""

from vocalab import stage
from vocalab.datasets.config import DataConfig
from vocalab.datasets.base import SKIPPED_FILE, count_other_files, read_skipped
from vocalab.datasets.layouts import scan_corpora
from vocalab.manifest import manifest_summary, write_manifest
from vocalab.errors import ManifestError
from vocalab.manifest_build import NoUsableAudio, build_manifest, merge_manifests
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "raw", "out", "rejects", "metrics")
    config = load_section(DataConfig, "data", args.params)
    try:
        manifest, rejects = merge_manifests([build_manifest(candidates, dataset=name)
                                             for name, candidates in scan_corpora(config, args.raw)])
    except NoUsableAudio as err:  # the rejects say why: write them before stopping
        args.rejects.parent.mkdir(parents=True, exist_ok=True)
        err.rejects.to_csv(args.rejects, index=False)
        raise ManifestError(f"{err} Every rejected file and its reason: {args.rejects}") from err
    write_manifest(manifest, args.out)
    rejects.to_csv(args.rejects, index=False)
    skipped = read_skipped(args.raw)
    summary = manifest_summary(manifest, rejects, n_other_files=count_other_files(args.raw), skipped=skipped)
    stage.write_json(args.metrics, summary)
    print(f"manifest: {summary['n_utterances']} utterances, {summary['n_speakers']} speakers, "
          f"{summary['n_rejected']} rejected (see {args.rejects})"
          + (f", {len(skipped)} skipped when copied ({', '.join(sorted(set(skipped['reason'])))}; "
             f"see {args.raw}/**/{SKIPPED_FILE})" if len(skipped) else ""))


if __name__ == "__main__":
    stage.run(main)
