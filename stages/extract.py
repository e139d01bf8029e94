"""extract_<name>: run one registered extractor over every manifest utterance, into its feature store(s)."""

from vocalab import stage
from vocalab.features import registry
from vocalab.features.extraction import extract_manifest
from vocalab.manifest import read_manifest
from vocalab.parallel import ParallelConfig
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "features", names=("extractor",))
    spec = registry.extractor(args.extractor)
    extractor = spec.build(load_section(spec.config, spec.section, args.params))  # bad weights fail here, early
    name = f"extract_{spec.name}"
    manifest = read_manifest(args.manifest, check_files=True)
    description = extractor.describe(manifest)
    if description:
        print(f"{name}: {description}")
    engine = load_section(ParallelConfig, "parallel", args.params, optional=True)
    report = extract_manifest(manifest, extractor, {output: args.features / output for output in spec.outputs},
                              backend=engine.backend, scheduler=engine.scheduler,
                              extra_meta=extractor.store_meta(manifest))
    print(report.line(name))


if __name__ == "__main__":
    stage.run(main)
