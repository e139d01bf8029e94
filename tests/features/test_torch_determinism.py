"""The same torch store bytes on every x86-64 CPU and at any core count (:mod:`vocalab.cpu_kernels`).

Each variant is a fresh process, run as the extraction and vad stages run: the kernels are
pinned before torch loads, and each worker computes on one thread. Without the pin, each of
ATen's capability, oneDNN's ISA, MKL's code path and the thread count changed these bytes.
Variants: 1 core (in-process), 2 cores (2 workers, with torch and BLAS left at 2 threads in
the parent), and a process started as on an AVX2-only machine (every ISA capped at AVX2,
NumPy's AVX-512 kernels off).
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import REPO_ROOT, json_from_fresh_process, speech_like, write_wav
from vocalab import cpu_kernels

DIGEST = """
import hashlib, json, sys
from pathlib import Path
from vocalab import cpu_kernels
cpu_kernels.pin()  # as the stages do, before torch loads
import pandas as pd
import torch
torch.set_num_threads(int(sys.argv[3]))  # what the process was given; the workers take one each
from vocalab.features.extraction import extract_manifest
from vocalab.features.registry import extractor as spec_of
from vocalab.params import load_section
from vocalab.vad import VADConfig, region_table

manifest, out = pd.read_csv(sys.argv[1]), Path(sys.argv[2])
digests = {"pinned": cpu_kernels.pinned()}
table = region_table(manifest, VADConfig(), progress=False)
digests["vad"] = hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()
manifest = manifest.merge(table[["utt_id", "speech_start_s", "speech_end_s"]], on="utt_id")
for name in ("wav2vec2", "vggish", "voice"):
    spec = spec_of(name)
    extractor = spec.build(load_section(spec.config, spec.section, sys.argv[4]))
    outs = {o: out / o for o in spec.outputs}
    extract_manifest(manifest, extractor, outs, workers=int(sys.argv[5]), cache_root=out / "cache", progress=False)
    for o, folder in outs.items():
        digests[o] = hashlib.sha256(b"".join((folder / n).read_bytes()
                                             for n in ("frames.npy", "pooled.npy", "offsets.npy"))).hexdigest()
print(json.dumps(digests))
"""

AVX2_MACHINE = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2",
                "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}


@pytest.mark.skipif(not cpu_kernels.can_pin(), reason="needs Linux on an x86-64 CPU with AVX2")
def test_torch_stores_and_speech_regions_are_byte_identical_across_cores_and_isa(tmp_path):
    import pandas as pd

    rows = []
    for i, duration in enumerate((1.2, 2.6, 3.4, 1.9)):
        path = write_wav(tmp_path / "audio" / f"u{i}.wav", speech_like(i, duration_s=duration), 16000)
        rows.append({"utt_id": f"u{i}", "path": str(path), "duration_s": duration, "audio_hash": f"h{i}"})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    params = str(REPO_ROOT / "params.yaml")
    variants = {"1 core": ({"VOCALAB_WORKERS": "1"}, 1),
                "2 cores, 2 workers": ({"VOCALAB_WORKERS": "2"}, 2),
                "an AVX2-only machine, 2 cores": ({"VOCALAB_WORKERS": "2", **AVX2_MACHINE}, 2)}
    from concurrent.futures import ThreadPoolExecutor

    def digest(k: int, env: dict, threads: int) -> dict:
        return json_from_fresh_process(DIGEST, str(tmp_path / "manifest.csv"), str(tmp_path / f"v{k}"), str(threads),
                                       params, env["VOCALAB_WORKERS"], env=env)

    with ThreadPoolExecutor(len(variants)) as pool:  # the processes run side by side: their bytes cannot depend on it
        futures = {name: pool.submit(digest, k, env, threads)
                   for k, (name, (env, threads)) in enumerate(variants.items())}
        digests = {name: future.result() for name, future in futures.items()}
    first = next(iter(digests.values()))
    assert first["pinned"] is True
    assert set(first) == {"pinned", "wav2vec2", "vggish", "logmel", "voice", "vad"}
    assert all(d == first for d in digests.values()), json.dumps(digests, indent=1)


def test_the_pin_is_declined_where_it_cannot_hold(monkeypatch):
    monkeypatch.setenv(cpu_kernels.OPT_OUT, "1")
    assert not cpu_kernels.can_pin() and not cpu_kernels.pin()
    monkeypatch.delenv(cpu_kernels.OPT_OUT)
    monkeypatch.setattr(cpu_kernels, "cpu_flags", lambda: {"sse4_2"})
    assert not cpu_kernels.can_pin()
    monkeypatch.setattr(cpu_kernels, "cpu_flags", lambda: {"avx2", "fma", "avx512_bf16"})
    assert not cpu_kernels.wants_float32("auto") and not cpu_kernels.wants_float32("bfloat16")
    assert cpu_kernels.wants_float32("float32") and cpu_kernels.wants_float32(None)
    monkeypatch.setattr(cpu_kernels, "cpu_flags", lambda: {"avx2", "fma"})
    assert cpu_kernels.wants_float32("auto")
