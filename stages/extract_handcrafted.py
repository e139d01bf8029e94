"""extract_handcrafted: MFCC + RMS + ZCR frames for every manifest utterance."""

from vocalab import stage
from vocalab.features.extraction import extract_manifest
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
from vocalab.manifest import read_manifest
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "out")
    config = load_section(HandcraftedConfig, "features", args.params)
    manifest = read_manifest(args.manifest, check_files=True)
    report = extract_manifest(manifest, HandcraftedExtractor(config), args.out)
    print(report.line("extract_handcrafted"))


if __name__ == "__main__":
    stage.run(main)
