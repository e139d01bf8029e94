"""check_params: every section of params.yaml, checked whenever any of it changes.

Each stage checks the sections it reads, but a stage reads only its own: a misspelled
section (``featurs:``) or one added by ``dvc exp run -S +featurs.n_mfcc=40`` would
change no stage and go unnoticed. This stage depends on the whole file, so any edit
reruns it (it builds every section's config, nothing more, in well under a second).
"""

from vocalab import stage
from vocalab.preflight import check_sections


def main() -> None:
    args = stage.parse_args(__doc__)
    print(f"check_params: {args.params}: {check_sections(args.params)} sections valid")


if __name__ == "__main__":
    stage.run(main)
