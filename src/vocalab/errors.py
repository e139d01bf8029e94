"""One exception family: every message says what is wrong and how to fix it."""

import sys

#: the exit status of a command stopped by bad input (a VocalabError)
EXIT_BAD_INPUT = 2


class VocalabError(Exception):
    """Base class of every error vocalab raises on bad input."""


class ParamsError(VocalabError, ValueError):
    """A params.yaml key is unknown, missing, of the wrong type or out of range."""


class AudioError(VocalabError):
    """An audio file cannot be read or decoded."""


class ManifestError(VocalabError):
    """The manifest (or a corpus on disk) breaks its contract."""


class FeatureStoreError(VocalabError):
    """A feature store is missing, incomplete or inconsistent."""


class FetchError(VocalabError):
    """A file (weights, a corpus archive) could not be downloaded or unpacked, or is not the file it should be."""


class WeightsError(VocalabError):
    """Model weights, a model config or PCA parameters that cannot be used."""


def load_failure(err: BaseException) -> str:
    """Why a file would not load, in one line. torch's advice to load a refused file with
    ``weights_only=False`` (which would run code from it) is never passed on."""
    if "weights_only" in str(err):
        return f"{type(err).__name__}: it holds objects other than tensors, which could run code when loaded"
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def report(err: VocalabError) -> int:
    """Print ``err`` as one line on stderr; returns the exit status for bad input."""
    print(f"error: {err}", file=sys.stderr)
    return EXIT_BAD_INPUT
