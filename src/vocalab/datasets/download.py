"""Download a corpus archive you can trust, and unpack it safely.

* The archive streams to ``<name>.part`` in the cache (``$VOCALAB_CACHE``, else
  ``~/.cache/vocalab``) with a progress bar. An interrupted download is resumed with
  an HTTP Range request; a server that ignores Range restarts it from zero.
* A server that stalls longer than the read timeout, a truncated body, an HTTP
  error: each stops with a message that says what happened and keeps the ``.part``
  file for the next run to resume.
* The checksum is verified before the atomic rename to the final name; a mismatch
  deletes the download. A ``<name>.ok`` marker holding the checksum makes a rerun
  skip the network entirely.
* Extraction refuses absolute paths, ``..`` entries and links, unpacks into a
  temporary folder and renames it into place: no half-written corpus is left.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm import tqdm

from vocalab.errors import VocalabError
from vocalab.fetch import cache_dir, file_digest, is_hex_digest


class DownloadError(VocalabError):
    """A corpus archive could not be downloaded, verified or unpacked."""


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

_CHUNK = 1 << 16


def parse_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, value = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or value != value.lower() or not is_hex_digest(value, algorithm):
        raise DownloadError(f"checksum {checksum!r} is not 'md5:<32 hex>' or 'sha256:<64 hex>'.")
    return algorithm, value


def download_archive(url: str, checksum: str, *, directory: Path | None = None, timeout_s: float = 60.0,
                     progress: bool = True) -> Path:
    """The verified archive at ``url`` in ``directory`` (default: the cache), downloaded if needed."""
    import requests

    algorithm, expected = parse_checksum(checksum)
    directory = Path(directory) if directory is not None else cache_dir() / "corpora"
    directory.mkdir(parents=True, exist_ok=True)
    name = Path(urlparse(url).path).name or "archive"
    final, part, marker = directory / name, directory / f"{name}.part", directory / f"{name}.ok"
    if final.is_file() and marker.is_file() and marker.read_text().strip() == checksum:
        return final
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = requests.get(url, stream=True, timeout=(10, timeout_s), headers=headers)
    except requests.RequestException as err:
        raise DownloadError(f"could not reach {url} ({type(err).__name__}: {err}). Check the network, or set "
                            f"data.url to a mirror.") from err
    with response:
        if response.status_code == 416:  # the .part is already whole (or stale): start over
            part.unlink()
            return download_archive(url, checksum, directory=directory, timeout_s=timeout_s, progress=progress)
        if response.status_code >= 400:
            raise DownloadError(f"{url} answered HTTP {response.status_code} {response.reason}. Check data.url "
                                f"(or the corpus's host).")
        resumed = response.status_code == 206
        if not resumed:
            offset = 0  # the server ignored Range (or there was nothing to resume)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=f"download {name}",
                   disable=not progress, dynamic_ncols=True)
        received = offset
        try:
            with open(part, "ab" if resumed else "wb") as handle:
                for block in response.iter_content(_CHUNK):
                    handle.write(block)
                    received += len(block)
                    bar.update(len(block))
        except requests.exceptions.ChunkedEncodingError as err:
            raise DownloadError(
                f"the download of {url} is truncated: the server closed the connection after {received:,} of "
                f"{total if total is not None else '?'} bytes. Run again to resume from {part}."
            ) from err
        except requests.RequestException as err:
            raise DownloadError(
                f"the download of {url} stopped after {received:,} bytes: the server stalled for over "
                f"{timeout_s:g} s ({type(err).__name__}). Run again to resume from {part}."
            ) from err
        finally:
            bar.close()
    if total is not None and received != total:
        raise DownloadError(f"the download of {url} is truncated: {received:,} of {total:,} bytes arrived. Run "
                            f"again to resume from {part}.")
    actual = file_digest(part, algorithm)
    if actual != expected:
        part.unlink()
        raise DownloadError(f"{url}: {algorithm} is {actual}, expected {expected}. The download was corrupt or "
                            f"is not the published file; it was deleted. Run again, or check data.url / "
                            f"data.sha256.")
    os.replace(part, final)
    marker.write_text(checksum + "\n")
    return final


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or ".." in path.parts:
        raise DownloadError(f"{archive} holds the entry '{name}', which would land outside the corpus folder. "
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
                        raise DownloadError(f"{archive} holds a symbolic link '{info.filename}'; links are refused "
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
                        raise DownloadError(f"{archive} holds '{member.name}', a link or special file; only "
                                            f"files and folders are unpacked.")
                for member in members:
                    if member.isfile():
                        destination = tmp / _safe_name(member.name, archive)
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        with tf.extractfile(member) as source, open(destination, "wb") as sink:
                            shutil.copyfileobj(source, sink)
                        count += 1
        else:
            raise DownloadError(f"{archive} is neither a zip nor a tar archive.")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive} is damaged ({err}); delete it and download it again.") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return count
