"""Device choice and thread budget shared by the torch-based extractors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, ContextManager

from vocalab import cpu_kernels
from vocalab.errors import ParamsError
from vocalab.features.base import Extractor, no_thread_limit
from vocalab.parallel import default_workers

if TYPE_CHECKING:
    import torch

def resolve_device(name: str, section: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is an error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(
            f"params key '{section}.device' = '{name}', but torch sees no CUDA device "
            f"(torch {torch.__version__}). Use device: auto or cpu."
        )
    return torch.device(name)


def preferred_workers(device: torch.device) -> int:
    """One process drives a GPU. On CPU, with portable kernels (:mod:`vocalab.cpu_kernels`),
    one worker per core, each of one thread, so that no sum is split between threads; with
    the CPU's own kernels, torch's threads scale well up to about 8 cores, so more processes
    only pay on larger machines."""
    if device.type == "cuda":
        return 1
    return default_workers() if cpu_kernels.pinned() else max(1, default_workers() // 8)


def share_cpu_threads(device: torch.device, n_workers: int) -> None:
    """Give each of ``n_workers`` processes its share of the CPU cores, for torch and for numpy's BLAS.

    Both matter: the front ends (log-mel, normalisation) run numpy, and a worker whose
    BLAS keeps every core oversubscribes them as soon as there are two workers.
    """
    import torch
    from threadpoolctl import threadpool_limits

    if device.type == "cpu":
        share = max(1, default_workers() // max(1, n_workers))
        torch.set_num_threads(1 if cpu_kernels.pinned() else share)
        threadpool_limits(limits=share)


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), as torch detects it.

    Elsewhere bfloat16 is emulated and slower than float32, so ``dtype: auto`` keeps float32.
    """
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


class TorchExtractor(Extractor):
    """Base of the torch-based extractors: spawned workers, each with its share of the cores.

    Pickling leaves out the attributes named in ``_transient`` (the model); a worker
    process rebuilds them with ``_load()``, the same code that loaded them here.
    """

    start_method: ClassVar[str | None] = "spawn"  # torch's thread pools do not survive fork
    uses_torch: ClassVar[bool] = True
    device: torch.device
    _transient: tuple[str, ...] = ("_model",)

    def _load(self) -> None:
        raise NotImplementedError

    def load(self) -> None:
        """``_load()``; with portable kernels, on one torch thread: a random initialisation drew other
        weights on two threads than on one."""
        with cpu_kernels.one_torch_thread():
            self._load()

    def worker_threads(self, n_workers: int) -> ContextManager[Any]:
        share_cpu_threads(self.device, n_workers)  # torch's and BLAS's threads, for the worker's life
        return no_thread_limit()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._transient:
            state[name] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.load()
