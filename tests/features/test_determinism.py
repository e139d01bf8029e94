"""The same store bytes on every machine: handcrafted extraction under other CPU kernels and thread counts.

Each variant runs in a fresh process, since NumPy picks its SIMD kernels and
OpenBLAS its core type when they are imported: AVX-512 and AVX2 switched off
(``NPY_DISABLE_CPU_FEATURES``), older OpenBLAS kernels (``OPENBLAS_CORETYPE``),
1 or 2 BLAS threads. float32 arithmetic gave a different store under each of them.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.conftest import json_from_fresh_process, speech_like, write_wav

DIGEST = """
import hashlib, json, sys
from pathlib import Path
import pandas as pd
from threadpoolctl import threadpool_limits
import vocalab.features.extraction as extraction
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor

manifest, out, threads = pd.read_csv(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
HandcraftedExtractor.worker_threads = lambda self, n: threadpool_limits(limits=threads)
extraction.extract_manifest(manifest, HandcraftedExtractor(HandcraftedConfig()), out / "store", workers=1,
                            cache_root=out / "cache", progress=False)
print(json.dumps({n: hashlib.sha256((out / "store" / n).read_bytes()).hexdigest()
                  for n in ("frames.npy", "pooled.npy", "offsets.npy")}))
"""

NO_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"
NO_AVX2 = "X86_V3 " + NO_AVX512


def _cpu_has(feature: str) -> bool:
    from numpy._core._multiarray_umath import __cpu_features__

    return bool(__cpu_features__.get(feature))


@pytest.mark.skipif(sys.platform != "linux" or not _cpu_has("AVX2"), reason="needs an x86-64 CPU with AVX2")
def test_handcrafted_store_is_byte_identical_across_simd_kernels_blas_cores_and_threads(tmp_path):
    import pandas as pd

    rows = []
    for i in range(6):
        rate = (16000, 48000, 22050)[i % 3]
        duration = 1.0 + 0.3 * i
        path = write_wav(tmp_path / "audio" / f"u{i}.wav", speech_like(i, sampling_rate=rate, duration_s=duration), rate)
        rows.append({"utt_id": f"u{i}", "path": str(path), "duration_s": duration})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    variants = {
        "default, 1 thread": ({}, 1),
        "default, 2 threads": ({}, 2),
        "no AVX-512": ({"NPY_DISABLE_CPU_FEATURES": NO_AVX512}, 1),
        "no AVX2, Haswell BLAS, 2 threads": ({"NPY_DISABLE_CPU_FEATURES": NO_AVX2, "OPENBLAS_CORETYPE": "Haswell"}, 2),
        "no AVX2, SandyBridge BLAS": ({"NPY_DISABLE_CPU_FEATURES": NO_AVX2, "OPENBLAS_CORETYPE": "SandyBridge"}, 1),
    }
    digests = {name: json_from_fresh_process(DIGEST, str(tmp_path / "manifest.csv"), str(tmp_path / f"v{k}"),
                                             str(threads), env=env)
               for k, (name, (env, threads)) in enumerate(variants.items())}
    first = next(iter(digests.values()))
    assert all(d == first for d in digests.values()), json.dumps(digests, indent=1)
    frames = np.load(tmp_path / "v0" / "store" / "frames.npy")
    assert frames.dtype == np.float32 and frames.shape[1] == 15
