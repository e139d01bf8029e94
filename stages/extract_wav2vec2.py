"""extract_wav2vec2: wav2vec 2.0 frame embeddings for every manifest utterance."""

from vocalab import stage
from vocalab.features.extraction import extract_manifest
from vocalab.features.wav2vec2 import Wav2Vec2Extractor, Wav2Vec2ExtractorConfig
from vocalab.features.wav2vec2_source import SECTION
from vocalab.manifest import read_manifest
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "out")
    config = load_section(Wav2Vec2ExtractorConfig, SECTION, args.params)
    extractor = Wav2Vec2Extractor(config)  # a source that cannot be loaded fails before any audio is read
    manifest = read_manifest(args.manifest, check_files=True)
    meta = extractor.meta()
    print(f"extract_wav2vec2: {meta['model']} ({'pretrained' if meta['pretrained'] else 'random init'}, "
          f"{meta['architecture']['num_parameters'] / 1e6:.1f} M parameters), layers {meta['layers']}, "
          f"{meta['device']} {meta['compute_dtype']}")
    report = extract_manifest(manifest, extractor, args.out)
    print(report.line("extract_wav2vec2"))


if __name__ == "__main__":
    stage.run(main)
