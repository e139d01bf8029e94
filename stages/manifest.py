"""manifest: validate every audio file of the corpus (data/raw, or a local corpus's index) into data/manifest.csv."""

from vocalab import stage
from vocalab.datasets.config import DataConfig
from vocalab.datasets.base import SKIPPED_FILE, read_skipped
from vocalab.datasets.layouts import scan_corpora
from vocalab.manifest import manifest_summary, write_manifest
from vocalab.manifest_cache import ManifestCache
from vocalab.errors import ManifestError
from vocalab.manifest_build import NoUsableAudio, build_manifest, merge_manifests
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "raw", "out", "rejects", "metrics")
    config = load_section(DataConfig, "data", args.params)
    try:
        scanned = scan_corpora(config, args.raw)
        cache = ManifestCache()
        manifest, rejects = merge_manifests([build_manifest(corpus.candidates, dataset=corpus.dataset,
                                                            hashes=corpus.hashes, cache=cache)
                                             for corpus in scanned])
        decoded = cache.save()
    except NoUsableAudio as err:  # the rejects say why: write them before stopping
        args.rejects.parent.mkdir(parents=True, exist_ok=True)
        err.rejects.to_csv(args.rejects, index=False)
        raise ManifestError(f"{err} Every rejected file and its reason: {args.rejects}") from err
    write_manifest(manifest, args.out)
    rejects.to_csv(args.rejects, index=False)
    skipped = read_skipped(args.raw)
    n_other_files = sum(corpus.n_other_files for corpus in scanned)
    summary = manifest_summary(manifest, rejects, n_other_files=n_other_files, skipped=skipped)
    stage.write_json(args.metrics, summary)
    print(f"manifest: {summary['n_utterances']} utterances, {summary['n_speakers']} speakers, "
          f"{summary['n_rejected']} rejected (see {args.rejects}); {decoded} usable file(s) decoded, "
          f"{cache.hits} known from the cache"
          + (f", {len(skipped)} skipped when indexed ({', '.join(sorted(set(skipped['reason'])))}; "
             f"see {args.raw}/**/{SKIPPED_FILE})" if len(skipped) else ""))


if __name__ == "__main__":
    stage.run(main)
