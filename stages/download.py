"""download: put the corpus in data/raw (generate the synthetic one, index a local one, or fetch one)."""

from vocalab import stage
from vocalab.datasets.config import DataConfig
from vocalab.datasets.sources import put_corpora
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "out")
    config = load_section(DataConfig, "data", args.params)
    for done in put_corpora(config, args.out):
        print(f"download: {done}")


if __name__ == "__main__":
    stage.run(main)
