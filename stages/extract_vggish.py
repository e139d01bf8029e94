"""extract_vggish: VGGish embeddings and log-mel statistics for every manifest utterance."""

from vocalab import stage
from vocalab.features.extraction import extract_manifest
from vocalab.features.vggish import SECTION, VGGishExtractor, VGGishExtractorConfig, short_clip_ids
from vocalab.manifest import read_manifest
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "out", "logmel-out")
    config = load_section(VGGishExtractorConfig, SECTION, args.params)
    extractor = VGGishExtractor(config)  # weights that cannot be had fail before any audio is read
    manifest = read_manifest(args.manifest, check_files=True)
    short = short_clip_ids(manifest)
    print(f"extract_vggish: VGGish ({'pretrained' if config.init == 'pretrained' else 'random init'}, "
          f"{extractor.num_parameters / 1e6:.1f} M parameters), {config.embedding}"
          f"{', postprocessed' if config.postprocess else ''}, {extractor.device.type}; "
          f"{len(short)} clip(s) under 0.975 s -> {config.short_clips}")
    report = extract_manifest(
        manifest, extractor, {"vggish": args.out, "logmel": args.logmel_out},
        extra_meta={"vggish": {"short_clips": {"policy": config.short_clips, "min_duration_s": 0.975,
                                               "utt_ids": short}}},
    )
    print(report.line("extract_vggish"))


if __name__ == "__main__":
    stage.run(main)
