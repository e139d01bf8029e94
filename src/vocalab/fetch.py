"""Files named by a path or a URL, checksum-verified, downloads cached.

A URL is downloaded once into the cache (``$VOCALAB_CACHE``, else
``$XDG_CACHE_HOME/vocalab``, else ``~/.cache/vocalab``) with a progress bar and
an atomic rename (pooch), and verified against a SHA-256: the full hash when
given, else the hash prefix that torch.hub-style file names carry
(``vggish-10086976.pth``: the hash starts with ``10086976``). A file that fails
the check is deleted and reported, never used.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from vocalab.errors import VocalabError

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_HEX_LENGTHS = {"md5": 32, "sha256": 64}


def is_hex_digest(value: str, algorithm: str = "sha256") -> bool:
    """Whether ``value`` is a digest of ``algorithm`` written in hex (either case)."""
    return len(value) == _HEX_LENGTHS[algorithm] and all(c in "0123456789abcdef" for c in value.lower())


class FetchError(VocalabError):
    """A file could not be had, or it is not the file it should be."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str  # of the file's bytes
    verified: str  # "sha256" | "name prefix" | "none"


def cache_dir() -> Path:
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
        path = _download(location, expected, key)
    else:
        path = Path(location).expanduser()
        if not path.is_file():
            raise FetchError(f"'{key}' = {location}: no such file. Give an existing path or an http(s) URL.")
    actual = file_digest(path)
    if expected and actual != expected:
        raise FetchError(f"'{key}': {path} has SHA-256 {actual}, expected {expected}. The file is corrupt or "
                         f"not the one named; delete it and download it again, or fix '{key}_sha256'.")
    if prefix and not actual.startswith(prefix):
        if is_url(location):
            path.unlink(missing_ok=True)
        raise FetchError(f"'{key}': {path} has SHA-256 {actual}, but its name promises a hash starting "
                         f"{prefix}. The file is corrupt or not the one named"
                         f"{' (the download was deleted)' if is_url(location) else ''}.")
    return Fetched(path, actual, "sha256" if expected else "name prefix" if prefix else "none")


def _download(url: str, sha256: str | None, key: str) -> Path:
    import pooch
    import requests

    target = cache_dir()
    name = Path(urlparse(url).path).name or "download"
    try:
        return Path(pooch.retrieve(
            url, known_hash=f"sha256:{sha256}" if sha256 else None, fname=name, path=target,
            downloader=pooch.HTTPDownloader(progressbar=True, timeout=60),
        ))
    except ValueError as err:  # pooch: hash mismatch (the download is not kept)
        raise FetchError(f"'{key}': the download of {url} failed its checksum: {err}") from err
    except (requests.RequestException, OSError) as err:
        raise FetchError(
            f"'{key}': could not download {url} ({type(err).__name__}: {err}). On a machine that can reach it, "
            f"download the file and set '{key}' to its local path."
        ) from err
