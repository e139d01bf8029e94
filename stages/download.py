"""download: put the corpus in data/raw (generate the synthetic one, copy a local one, or fetch one)."""

from pathlib import Path

from vocalab import stage
from vocalab.datasets import DataConfig
from vocalab.params import load_section


def main() -> None:
    args = stage.parse_args(__doc__, "out")
    config = load_section(DataConfig, "data", args.params)
    if config.source == "synthetic":
        from vocalab.datasets.synthetic import generate

        n = generate(config.synthetic, args.out)
        print(f"download: generated {n} synthetic clips in {args.out}")
    elif config.source == "local":
        from vocalab.datasets.local import copy_corpus

        n = copy_corpus(Path(config.path), args.out)
        print(f"download: copied {n} files from {config.path} to {args.out}")
    else:
        from vocalab.datasets.download import download_archive, extract_archive

        archive = config.archive()
        path = download_archive(archive.url, archive.checksum)
        n = extract_archive(path, args.out)
        print(f"download: {config.source} from {archive.url} ({archive.checksum}), {n} files unpacked to {args.out}")


if __name__ == "__main__":
    stage.run(main)
