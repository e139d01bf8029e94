"""The extractor contract: every hook the extraction engine calls, declared once, with its default.

An extractor is a subclass of :class:`Extractor` registered with
:func:`vocalab.features.registry.register_extractor`. It writes one feature store
(set ``dim``, ``feature_names`` and ``meta()``) or several from one pass over the
audio (override ``outputs()``). Its one required computation is the pure
``extract(samples, sampling_rate)``; every other hook has a default that fits a
numpy extractor, and the engine calls nothing that is not declared here.

What ``extract`` returns, per signal:

* an extractor of one store: its frames, ``[shape=(t, dim)]``;
* an extractor of several: a dict from output name to frames;
* for an output whose meta says ``pooled: functionals`` (with ``pooled_names``):
  ``(frames, row)``, the utterance-level row stored as the pooled features in place
  of the frames' mean and std.

An output with no frames for an utterance (``t == 0``) leaves that utterance out of
its store, and the store's meta lists it under ``absent_utt_ids``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, ContextManager, Mapping, Sequence

from vocalab.features.store import Output

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


#: the manifest columns that hold each utterance's speech region (the ``vad`` stage's), in seconds, for an
#: extractor that reads regions
SPEECH_REGION = ("speech_start_s", "speech_end_s")


def read_lengths(manifest: "pd.DataFrame") -> "pd.Series":
    """Seconds of audio an extractor reads per utterance: its speech region where the manifest has one."""
    start, end = SPEECH_REGION
    if start in manifest.columns:
        return manifest[end] - manifest[start]
    return manifest["duration_s"]


class Extractor:
    """Base of every extractor; picklable, since worker processes receive it."""

    #: the extractor's name: its module under ``vocalab.features`` and its stage, ``extract_<name>``
    name: ClassVar[str]
    #: the rate signals are decoded at before ``extract`` sees them
    sampling_rate: int
    #: storage dtype of the frames (pooled statistics are float32)
    frames_dtype: str = "float32"
    #: one store's frame width and feature names (extractors of several stores override ``outputs``)
    dim: int
    feature_names: list[str]
    #: how worker processes start: ``None`` forks on Linux (spawn elsewhere); ``"spawn"`` for torch
    start_method: ClassVar[str | None] = None
    #: workers when the caller names none; ``None``: one per CPU (``VOCALAB_WORKERS``)
    preferred_workers: int | None = None
    #: files per unit of work sent to a worker
    shard_size: int = 32
    #: whether it reads each utterance's speech region (the ``vad`` stage's) instead of the whole file; its
    #: stage then depends on that table, and its stores' meta say so
    #: seconds of audio below which another worker costs more to start than it saves (0: no such cost);
    #: the engine gives a job no more workers than its audio has of these
    audio_s_per_worker: ClassVar[float] = 0.0
    #: computes with torch (the extraction stage pins torch's CPU kernels before torch loads)
    uses_torch: ClassVar[bool] = False
    reads_speech_region: ClassVar[bool] = False

    # -- what it writes --------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """The ``meta.json`` of its one store: parameters, feature names, frame rate, provenance."""
        raise NotImplementedError(f"{type(self).__name__} writes one store: define meta(), or override outputs()")

    def outputs(self) -> list[Output]:
        """The stores it writes; one named after the extractor unless overridden."""
        return [Output(self.name, self.dim, self.frames_dtype, self.meta())]

    def store_meta(self, manifest: pd.DataFrame) -> Mapping[str, dict[str, Any]]:
        """Output name -> what its store records of ``manifest`` beyond the fingerprinted meta (default none)."""
        return {}

    def describe(self, manifest: pd.DataFrame) -> str | None:
        """One line for the stage log before extraction starts (default none)."""
        return None

    # -- computing -------------------------------------------------------------------------

    def extract(self, samples: np.ndarray, sampling_rate: int) -> Any:
        """Features of one signal (see the module docstring for the shape of the result). No file I/O."""
        raise NotImplementedError(f"{type(self).__name__} must define extract(samples, sampling_rate)")

    def extract_batch(self, signals: Sequence[np.ndarray]) -> list[Any]:
        """Features of several signals at ``sampling_rate``; override to batch them through a model."""
        return [self.extract(samples, self.sampling_rate) for samples in signals]

    # -- running in workers ----------------------------------------------------------------

    def before_fork(self) -> None:
        """Build, in the parent, what forked workers then share (tables, filterbanks). Default: nothing."""

    def worker_threads(self, n_workers: int) -> ContextManager[Any]:
        """Each of ``n_workers`` workers' thread budget, held while it extracts.

        One BLAS/OpenMP thread by default: N workers on N cores then do not oversubscribe
        them (a forked worker would otherwise inherit the parent's thread pool).
        """
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1)


def no_thread_limit() -> ContextManager[Any]:
    """For a ``worker_threads`` that sets its threads itself and holds nothing."""
    return contextlib.nullcontext()
