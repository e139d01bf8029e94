"""The same torch results on every x86-64 CPU: kernels pinned to AVX2, one thread per worker.

torch's CPU results depend on the machine in four ways, each of which changed the bytes of a
wav2vec 2.0, VGGish or Silero VAD pass between an AVX-512 machine and the same machine with
that setting changed:

- ATen's vectorised kernels follow the CPU's widest instruction set (``ATEN_CPU_CAPABILITY``);
- oneDNN, which runs the convolutions, does the same (``ONEDNN_MAX_CPU_ISA``);
- MKL, which runs the matrix products, picks its code path by CPU (``MKL_CBWR``);
- a reduction split over two threads adds in another order than over one.

:func:`pin` sets the first three to AVX2, the widest set every x86-64 CPU vocalab meets has,
before torch is imported (they are read once, when it loads); the torch extractors then run
one torch thread per worker process and as many workers as cores
(:mod:`vocalab.features.torch_runtime`). Spawned workers inherit the environment.

Pinned only where it is both possible and wanted: Linux on x86-64 with AVX2, float32
computation (bfloat16 needs AVX-512's own instructions), and ``VOCALAB_NATIVE_KERNELS`` unset
(set it to 1 for the CPU's own kernels: faster on some machines, with bytes of its own).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from typing import Iterator

#: the environment that pins torch's CPU kernels to AVX2
PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"}
#: set to 1 to leave torch's kernels to the CPU
OPT_OUT = "VOCALAB_NATIVE_KERNELS"


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bfloat16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), read without importing torch."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def can_pin() -> bool:
    return (sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64") and {"avx2", "fma"} <= cpu_flags()
            and os.environ.get(OPT_OUT, "").strip() not in ("1", "true", "yes"))


def pinned() -> bool:
    """Whether this process computes torch with the portable kernels."""
    return can_pin() and all(os.environ.get(k) == v for k, v in PORTABLE_ENV.items())


def pin() -> bool:
    """Pin torch's CPU kernels to AVX2 for this process and the workers it starts; whether they are.

    Has effect only before torch is imported; afterwards it reports whether the kernels were
    pinned when torch loaded.
    """
    if not can_pin():
        return False
    if "torch" not in sys.modules:
        os.environ.update(PORTABLE_ENV)
    return pinned()


def wants_float32(dtype: str | None) -> bool:
    """Whether an extractor's ``dtype`` param computes float32 on this CPU (``auto``: unless bfloat16 is native)."""
    return dtype in (None, "float32") or (dtype == "auto" and not native_bfloat16())


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """With portable kernels, torch computes on one thread inside the block (the count is restored after):
    the same sums, in the same order, on every machine. Elsewhere it changes nothing."""
    import torch

    threads = torch.get_num_threads()
    if pinned():
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
