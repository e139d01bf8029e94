"""Bring one corpus, or several (``data.sources``), into data/raw and scan them.

A single corpus fills data/raw itself; several go to ``data/raw/<name>/`` each, and
their speakers and utt_ids carry that name, so corpora never share a speaker and
the speaker-independent split stays speaker-independent across them.
"""

from __future__ import annotations

from pathlib import Path

from vocalab.datasets import CorpusConfig, DataConfig, apply_label_map, scan_corpus
from vocalab.datasets.base import Candidate


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


def scan_corpora(config: DataConfig, raw: Path) -> list[tuple[str, list[Candidate]]]:
    """Per corpus: its name and its candidates, with ``data.target`` and ``data.label_map`` applied."""
    scanned = []
    for corpus in config.corpora():
        candidates = scan_corpus(raw / config.raw_folder(corpus), layout=corpus.corpus_layout,
                                 dataset=corpus.dataset, config=corpus, target=config.target)
        scanned.append((corpus.dataset, apply_label_map(candidates, config.label_map, dataset=corpus.dataset)))
    return scanned
