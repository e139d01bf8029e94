"""vad: each utterance's speech region, for the extractors that read trimmed audio."""

from vocalab import cpu_kernels, stage
from vocalab.manifest import read_manifest
from vocalab.params import load_section
from vocalab.vad import SECTION, VADConfig, region_table, summary


def main() -> None:
    args = stage.parse_args(__doc__, "manifest", "out", "metrics")
    cpu_kernels.pin()  # before torch loads: the same regions on every x86-64 CPU
    config = load_section(VADConfig, SECTION, args.params, optional=True)
    manifest = read_manifest(args.manifest, check_files=True)
    table = region_table(manifest, config)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    report = summary(table, config)
    stage.write_json(args.metrics, report)
    print(f"vad: {config.method}, {report['n_utterances']} utterances, {report['n_trimmed']} trimmed, "
          f"{report['n_no_speech']} without speech found (kept whole), {report['kept_s']:.1f} of "
          f"{report['audio_s']:.1f} s kept")


if __name__ == "__main__":
    stage.run(main)
