"""extract_handcrafted: MFCC + RMS + ZCR frames for every manifest utterance."""

from pathlib import Path

from vocalab import stage
from vocalab.features.extraction import extract_manifest
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
from vocalab.manifest import read_manifest
from vocalab.params import load_section


def main() -> None:
    parser = stage.parser(__doc__)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = load_section(HandcraftedConfig, "features", args.params)
    manifest = read_manifest(args.manifest, check_files=True)
    report = extract_manifest(manifest, HandcraftedExtractor(config), args.out)
    print(report.line("extract_handcrafted"))


if __name__ == "__main__":
    stage.run(main)
