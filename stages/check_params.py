"""check_params: every section of params.yaml, checked whenever any of it changes.

Each stage checks the sections it reads, but a stage reads only its own: a misspelled
section (``featurs:``) or one added by ``dvc exp run -S +featurs.n_mfcc=40`` would
change no stage and go unnoticed. This stage depends on the whole file, so any edit
reruns it (it builds every section's config, nothing more, in well under a second).
"""

from vocalab import stage
from vocalab.datasets.config import DataConfig
from vocalab.features.registry import all_extractors
from vocalab.models.config import TrainConfig
from vocalab.parallel import ParallelConfig
from vocalab.params import load_section
from vocalab.splits import SplitConfig
from vocalab.vad import SECTION as VAD_SECTION, VADConfig


def main() -> None:
    args = stage.parse_args(__doc__)
    sections = [(DataConfig, "data"), (SplitConfig, "split"), (TrainConfig, "train")]
    sections += [(spec.config, spec.section) for spec in all_extractors().values()]
    for config, section in sections:
        load_section(config, section, args.params)
    load_section(ParallelConfig, "parallel", args.params, optional=True)
    load_section(VADConfig, VAD_SECTION, args.params, optional=True)
    print(f"check_params: {args.params}: {len(sections) + 2} sections valid")


if __name__ == "__main__":
    stage.run(main)
