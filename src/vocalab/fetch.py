"""Files named by a path or a URL, checksum-verified; one downloader for weights and corpora.

Every download lands in ``$VOCALAB_CACHE/downloads`` (else ``$XDG_CACHE_HOME/vocalab``,
else ``~/.cache/vocalab``), one layout for all:

* the file streams to ``<name>.part`` with a progress bar; an interrupted download is
  resumed with an HTTP Range request (a server that ignores Range restarts it);
* a server that stalls longer than the read timeout, a truncated body, an HTTP error:
  each stops with a message that says what happened and keeps the ``.part`` file for
  the next run to resume;
* the checksum is verified before the atomic rename to ``<name>``; a mismatch deletes
  the download; a ``<name>.ok`` marker holding the checksum makes a rerun skip the
  network entirely.

:func:`fetch` gives a local path for a params value that is a path or a URL (weights),
verified against a SHA-256: the full hash when given, else the hash prefix that
torch.hub-style file names carry (``vggish-10086976.pth``: the hash starts with
``10086976``). A file that fails the check is reported, never used.

:func:`packaged_file` finds weights a wheel ships, without importing its package, and
:func:`checked_file` holds them to their released SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from vocalab.errors import FetchError, WeightsError

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_HEX_LENGTHS = {"md5": 32, "sha256": 64}


def is_hex_digest(value: str, algorithm: str = "sha256") -> bool:
    """Whether ``value`` is a digest of ``algorithm`` written in hex (either case)."""
    return len(value) == _HEX_LENGTHS[algorithm] and all(c in "0123456789abcdef" for c in value.lower())


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str  # of the file's bytes
    verified: str  # "sha256" | "name prefix" | "none"


def cache_dir() -> Path:
    """vocalab's cache folder (``$VOCALAB_CACHE``, else ``$XDG_CACHE_HOME/vocalab``, else ``~/.cache/vocalab``)."""
    if os.environ.get("VOCALAB_CACHE"):
        return Path(os.environ["VOCALAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vocalab"


def is_url(location: str) -> bool:
    return urlparse(location).scheme in ("http", "https")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_prefix_in_name(name: str) -> str | None:
    """The torch.hub convention: ``<name>-<first hex digits of the SHA-256>.<ext>``."""
    match = _HASH_IN_NAME.search(name)
    return match.group(1) if match else None


def fetch(location: str, *, sha256: str | None, key: str, require_checksum_for_urls: bool = True) -> Fetched:
    """A local path for ``location`` (a path or an http(s) URL), verified.

    Parameters
    ----------
    location : str
        Path or URL.
    sha256 : str or None
        Expected SHA-256 (64 hex digits); ``None`` falls back to a hash prefix in the
        file name. A URL with neither is refused (``require_checksum_for_urls``); a
        local file with neither is used as it is, with its hash recorded.
    key : str
        The params key that named ``location``, for error messages.
    """
    if sha256 is not None and not is_hex_digest(sha256):
        raise FetchError(f"'{key}_sha256' = {sha256!r} is not a SHA-256: give 64 hex digits, or null.")
    expected = sha256.lower() if sha256 else None
    name = Path(urlparse(location).path).name if is_url(location) else Path(location).name
    prefix = None if expected else hash_prefix_in_name(name)
    if is_url(location):
        if expected is None and prefix is None and require_checksum_for_urls:
            raise FetchError(
                f"'{key}' = {location} is a URL without a checksum. Set '{key}_sha256' to the file's "
                f"SHA-256 so a wrong or tampered download is caught."
            )
        path = download(location, f"sha256:{expected}" if expected else None, key=key)
    else:
        path = Path(location).expanduser()
        if not path.is_file():
            raise FetchError(f"'{key}' = {location}: no such file. Give an existing path or an http(s) URL.")
    actual = file_digest(path)
    if expected and actual != expected:
        raise FetchError(f"'{key}': {path} has SHA-256 {actual}, expected {expected}. The file is corrupt or "
                         f"not the one named; delete it and download it again, or fix '{key}_sha256'.")
    if prefix and not actual.startswith(prefix):
        if is_url(location):  # not kept: the next run downloads it again
            path.unlink(missing_ok=True)
            path.with_name(f"{path.name}.ok").unlink(missing_ok=True)
        raise FetchError(f"'{key}': {path} has SHA-256 {actual}, but its name promises a hash starting "
                         f"{prefix}. The file is corrupt or not the one named"
                         f"{' (the download was deleted)' if is_url(location) else ''}.")
    return Fetched(path, actual, "sha256" if expected else "name prefix" if prefix else "none")


def downloads_dir() -> Path:
    """Where every download is kept."""
    return cache_dir() / "downloads"


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"md5:<hex>"`` or ``"sha256:<hex>"`` -> (algorithm, lower-case hex)."""
    algorithm, _, value = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or value != value.lower() or not is_hex_digest(value, algorithm):
        raise FetchError(f"checksum {checksum!r} is not 'md5:<32 hex>' or 'sha256:<64 hex>'.")
    return algorithm, value


_CHUNK = 1 << 16


def download(url: str, checksum: str | None, *, key: str, directory: Path | None = None,
             timeout_s: float = 60.0, progress: bool = True) -> Path:
    """The file at ``url`` in ``directory`` (default :func:`downloads_dir`), downloaded if needed.

    Parameters
    ----------
    checksum : str or None
        ``"md5:<hex>"`` or ``"sha256:<hex>"``, verified before the file takes its name;
        None verifies nothing here (the caller checks what it knows, e.g. a hash prefix).
    key : str
        The params key that named ``url``, for error messages.
    """
    import requests

    algorithm, expected = parse_checksum(checksum) if checksum is not None else ("sha256", None)
    directory = Path(directory) if directory is not None else downloads_dir()
    directory.mkdir(parents=True, exist_ok=True)
    name = Path(urlparse(url).path).name or "download"
    final, part, marker = directory / name, directory / f"{name}.part", directory / f"{name}.ok"
    if final.is_file() and marker.is_file():
        recorded = marker.read_text().strip()
        if checksum is None or recorded == checksum:
            return final
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = requests.get(url, stream=True, timeout=(10, timeout_s), headers=headers)
    except requests.RequestException as err:
        raise FetchError(f"could not reach {url} ({type(err).__name__}: {err}). Check the network, or on a machine "
                         f"that can reach it download the file and set '{key}' to its local path (or a mirror's "
                         f"URL).") from err
    with response:
        if response.status_code == 416:  # the .part is already whole (or stale): start over
            part.unlink()
            return download(url, checksum, key=key, directory=directory, timeout_s=timeout_s, progress=progress)
        if response.status_code >= 400:
            raise FetchError(f"could not download {url}: it answered HTTP {response.status_code} "
                             f"{response.reason}. Check '{key}'.")
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
            raise FetchError(
                f"the download of {url} is truncated: the server closed the connection after {received:,} of "
                f"{total if total is not None else '?'} bytes. Run again to resume from {part}."
            ) from err
        except requests.RequestException as err:
            raise FetchError(
                f"the download of {url} stopped after {received:,} bytes: the server stalled for over "
                f"{timeout_s:g} s ({type(err).__name__}). Run again to resume from {part}."
            ) from err
        finally:
            bar.close()
    if total is not None and received != total:
        raise FetchError(f"the download of {url} is truncated: {received:,} of {total:,} bytes arrived. Run "
                         f"again to resume from {part}.")
    actual = file_digest(part, algorithm)
    if expected is not None and actual != expected:
        part.unlink()
        raise FetchError(f"{url}: {algorithm} is {actual}, expected {expected}. The download was corrupt or "
                         f"is not the published file; it was deleted. Run again, or check '{key}' and its "
                         f"checksum.")
    os.replace(part, final)
    marker.write_text(f"{checksum or f'{algorithm}:{actual}'}\n")
    return final


def packaged_file(package: str, relative: str) -> Path:
    """A file an installed package ships, found without importing the package (its import may have side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the package '{package}' is not installed; install the project's requirements "
                           f"(make install).")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise WeightsError(f"'{path}' is missing from the installed '{package}'; reinstall it.")
    return path


def checked_file(path: Path, sha256: str) -> Path:
    """``path`` if its SHA-256 is ``sha256``; else a one-line error naming it."""
    actual = file_digest(path)
    if actual != sha256:
        raise WeightsError(f"'{path}' has SHA-256 {actual}, expected {sha256}: the file is damaged or not the "
                           f"released one. Reinstall its package (pip install --force-reinstall).")
    return path
