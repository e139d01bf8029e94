"""Bring one corpus, or several (``data.sources``), into data/raw (scanning them: :mod:`.layouts`).

A generated or downloaded corpus is written there; a local one is indexed there and
read where it lies (:mod:`.local`). A single corpus fills data/raw itself; several go
to ``data/raw/<name>/`` each, and
their speakers and utt_ids carry that name, so corpora never share a speaker and
the speaker-independent split stays speaker-independent across them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vocalab.datasets.config import CorpusConfig, DataConfig


def put_corpus(corpus: CorpusConfig, config: DataConfig, target: Path) -> str:
    """Generate, index or download one corpus into ``target``; returns what was done, in words."""
    if corpus.source == "synthetic":
        from vocalab.datasets.synthetic import generate

        return f"generated {generate(config.synthetic, target)} synthetic clips in {target}"
    if corpus.source == "local":
        from vocalab.datasets.local import INDEX_FILE, index_corpus

        where = config.local_path(corpus)
        indexed, hashed = index_corpus(where, target)
        return f"indexed {indexed} files of {where} in {target / INDEX_FILE} ({hashed} new or changed, hashed)"
    from vocalab.datasets.download import download_archive, extract_archive

    archive = corpus.archive()
    n = extract_archive(download_archive(archive.url, archive.checksum), target)
    return f"{corpus.source} from {archive.url} ({archive.checksum}), {n} files unpacked to {target}"


def put_corpora(config: DataConfig, out: Path) -> list[str]:
    """Each corpus into its folder of ``out``; what ``out`` held for other corpora is removed.

    ``out`` persists between runs (DVC keeps it), so a local corpus's index keeps the
    hashes of files that did not change; a generated or downloaded one replaces its folder.
    """
    out = Path(out)
    corpora = config.corpora()
    if config.sources and out.is_dir():
        wanted = {config.raw_folder(corpus) for corpus in corpora}
        for entry in out.iterdir():
            if entry.name not in wanted:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    done = []
    for corpus in corpora:
        target = out / config.raw_folder(corpus)
        if corpus.source != "local" and target.exists():
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
        done.append(put_corpus(corpus, config, target))
    return done
