"""Bring one corpus, or several (``data.sources``), into data/raw (scanning them: :mod:`.layouts`).

A single corpus fills data/raw itself; several go to ``data/raw/<name>/`` each, and
their speakers and utt_ids carry that name, so corpora never share a speaker and
the speaker-independent split stays speaker-independent across them.
"""

from __future__ import annotations

from pathlib import Path

from vocalab.datasets.config import CorpusConfig, DataConfig


def put_corpus(corpus: CorpusConfig, config: DataConfig, target: Path) -> str:
    """Generate, copy or download one corpus into ``target``; returns what was done, in words."""
    if corpus.source == "synthetic":
        from vocalab.datasets.synthetic import generate

        return f"generated {generate(config.synthetic, target)} synthetic clips in {target}"
    if corpus.source == "local":
        from vocalab.datasets.local import copy_corpus

        return f"copied {copy_corpus(Path(corpus.path), target)} files from {corpus.path} to {target}"
    from vocalab.datasets.download import download_archive, extract_archive

    archive = corpus.archive()
    n = extract_archive(download_archive(archive.url, archive.checksum), target)
    return f"{corpus.source} from {archive.url} ({archive.checksum}), {n} files unpacked to {target}"


def put_corpora(config: DataConfig, out: Path) -> list[str]:
    return [put_corpus(corpus, config, out / config.raw_folder(corpus)) for corpus in config.corpora()]
