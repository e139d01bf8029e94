"""extract_<name>: run one registered extractor over every manifest utterance, into its feature store(s)."""

from vocalab import cpu_kernels, stage
from vocalab.features import registry
from vocalab.features.extraction import extract_manifest
from vocalab.features.store import write_not_built
from vocalab.models.config import TrainConfig, needed_sets
from vocalab.manifest import read_manifest
from vocalab.parallel import ParallelConfig
from vocalab.errors import ParamsError
from vocalab.params import load_params, load_section, to_dict
from vocalab.vad import SECTION as VAD_SECTION, VADConfig, with_regions


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "features", names=("extractor",), optional=("regions",))
    spec = registry.extractor(args.extractor)
    name = f"extract_{spec.name}"
    has_train = "train" in load_params(args.params)  # params of extraction alone: extract
    if has_train and not needed_sets(load_section(TrainConfig, "train", args.params)) & set(spec.outputs):  # no set of the run reads these stores: leave word of it, not a minute of extraction
        for output in spec.outputs:
            write_not_built(args.features / output, output, "no train.feature_sets entry uses it, directly or "
                                                             "through a fusion")
        print(f"{name}: no entry of train.feature_sets uses {', '.join(spec.outputs)}: not extracted")
        return
    config = load_section(spec.config, spec.section, args.params)
    if spec.build.uses_torch and cpu_kernels.wants_float32(getattr(config, "dtype", None)):
        cpu_kernels.pin()  # before torch loads: the same store bytes on every x86-64 CPU
    extractor = spec.build(config)  # bad weights fail here, early
    manifest = read_manifest(args.manifest, check_files=True)
    if extractor.reads_speech_region:
        if args.regions is None:
            raise ParamsError(f"{name} reads speech regions: pass the vad stage's table with --regions data/vad.csv "
                              f"(vocalab pipeline writes it into dvc.yaml).")
        manifest = with_regions(manifest, args.regions)
    extra_meta = dict(extractor.store_meta(manifest))
    if extractor.reads_speech_region:  # how the regions were found: vocalab predict finds those of new files so
        vad = to_dict(load_section(VADConfig, VAD_SECTION, args.params, optional=True))
        extra_meta = {output: {**extra_meta.get(output, {}), "vad": vad} for output in spec.outputs}
    description = extractor.describe(manifest)
    if description:
        print(f"{name}: {description}")
    engine = load_section(ParallelConfig, "parallel", args.params, optional=True)
    report = extract_manifest(manifest, extractor, {output: args.features / output for output in spec.outputs},
                              backend=engine.backend, scheduler=engine.scheduler,
                              extra_meta=extra_meta)
    print(report.line(name))


if __name__ == "__main__":
    stage.run(main)
