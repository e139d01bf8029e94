"""Corpus archives: the known ones, downloaded as any file is, and unpacked safely.

* Downloading is :func:`vocalab.fetch.download`: resumed, checksum-verified before the
  file takes its name, cached in the one downloads folder.
* Extraction refuses absolute paths, ``..`` entries and links, unpacks into a
  temporary folder and renames it into place: no half-written corpus is left.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vocalab.errors import FetchError
from vocalab.fetch import download


@dataclass(frozen=True)
class Archive:
    url: str
    checksum: str  # "md5:<hex>" or "sha256:<hex>", as the host publishes it


#: corpora with a single archive and a published checksum
KNOWN_ARCHIVES: dict[str, Archive] = {
    # Zenodo lists the MD5 of every file of a record
    "ravdess": Archive("https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip",
                       "md5:bc696df654c87fed845eb13823edef8a"),
}


def download_archive(url: str, checksum: str, *, directory: Path | None = None, timeout_s: float = 60.0,
                     progress: bool = True) -> Path:
    """The verified archive at ``url`` (:func:`vocalab.fetch.download`: resumed, checksummed, cached)."""
    if checksum is None:
        raise FetchError(f"{url} has no checksum: set data.sha256 to the archive's SHA-256.")
    return download(url, checksum, key="data.url", directory=directory, timeout_s=timeout_s, progress=progress)


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or ".." in path.parts:
        raise FetchError(f"{archive} holds the entry '{name}', which would land outside the corpus folder. "
                         f"The archive is unsafe; nothing was unpacked.")
    return path


def extract_archive(archive: Path, target: Path) -> int:
    """Unpack a zip or tar archive into ``target`` (replaced whole); returns the number of files."""
    archive, target = Path(archive), Path(target)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    count = 0
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = zf.infolist()
                for info in members:
                    _safe_name(info.filename, archive)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise FetchError(f"{archive} holds a symbolic link '{info.filename}'; links are refused "
                                            f"so nothing can point outside the corpus folder.")
                for info in members:
                    if not info.is_dir():
                        destination = tmp / _safe_name(info.filename, archive)
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as source, open(destination, "wb") as sink:
                            shutil.copyfileobj(source, sink)
                        count += 1
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for member in members:
                    _safe_name(member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise FetchError(f"{archive} holds '{member.name}', a link or special file; only "
                                            f"files and folders are unpacked.")
                for member in members:
                    if member.isfile():
                        destination = tmp / _safe_name(member.name, archive)
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        with tf.extractfile(member) as source, open(destination, "wb") as sink:
                            shutil.copyfileobj(source, sink)
                        count += 1
        else:
            raise FetchError(f"{archive} is neither a zip nor a tar archive.")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FetchError(f"{archive} is damaged ({err}); delete it and download it again.") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return count
