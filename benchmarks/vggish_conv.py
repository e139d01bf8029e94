"""Benchmark: VGGish's 3x3 convolutions, direct against Winograd, at 1 and 2 threads, idle and loaded.

``embeddings.vggish.conv`` chooses how VGGish's wide 3x3 layers run on CPU in float32:
``direct`` (torch's own convolution) or ``winograd`` (:mod:`vocalab.features.winograd`,
Winograd's F(4x4, 3x3): a quarter of the direct products per output block). Fewer products
do not always mean less time: the transforms are memory-bound, and how well they run depends on
the CPU's vector width, its caches and what else runs on the machine. This script times one
forward pass of a batch of examples for each choice, with torch at 1 and 2 threads, on an idle
machine and with a second process keeping one core busy (a 1-thread matrix-product loop), and
prints a table with the CPU kind. The default must be the faster choice in every row; where
neither wins everywhere, it is ``direct``.

    python benchmarks/vggish_conv.py
    python benchmarks/vggish_conv.py --batch 32 --repeats 7 --threads 1 2

How the Winograd path was tuned (its chunk limits, :data:`~vocalab.features.winograd.ROWS` and
:data:`~vocalab.features.winograd.FLOATS`): matrix products of 192 to 768 rows ran fastest on a
2-core AVX2 machine; chunks whose transformed inputs and products outgrew about 2^19 floats per
block position spilled from the cache and ran 1.4 to 1.5 times slower. Those figures are one
machine's: rerun this script where it matters.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import re
import statistics
import time

from results import add_results_argument, cpu_kind, record


def _busy(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """Keep one core busy with 1-thread matrix products until ``stop`` is set."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((256, 256))
    with threadpool_limits(limits=1):
        while not stop.is_set():
            a = np.tanh(a @ a)


@contextlib.contextmanager
def load(busy: bool):
    if not busy:
        yield
        return
    stop = multiprocessing.get_context("spawn").Event()
    worker = multiprocessing.get_context("spawn").Process(target=_busy, args=(stop,), daemon=True)
    worker.start()
    time.sleep(1.0)  # let it start spinning
    try:
        yield
    finally:
        stop.set()
        worker.join(timeout=10)


def time_passes(conv: str, threads: int, batch: int, repeats: int) -> list[float]:
    import torch

    from vocalab.features.vggish_model import build_vggish, init_random

    torch.set_num_threads(threads)
    model = build_vggish(conv=conv)
    init_random(model, 0)
    examples = torch.from_numpy(__import__("numpy").random.default_rng(1).standard_normal(
        (batch, 96, 64)).astype("float32"))
    times = []
    with torch.inference_mode():
        model(examples)  # warm-up: filter transforms, allocator
        for _ in range(repeats):
            start = time.perf_counter()
            model(examples)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="examples per forward pass (the default batch)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    add_results_argument(parser)
    args = parser.parse_args()
    print(f"CPU: {cpu_kind()}; forward pass of {args.batch} examples, median of {args.repeats}")
    lines = ["| threads | load | direct (s) | winograd (s) | winograd speed-up |", "|---:|---|---:|---:|---:|"]
    print("\n".join(lines))
    for threads in args.threads:
        for busy in (False, True):
            with load(busy):
                medians = {conv: statistics.median(time_passes(conv, threads, args.batch, args.repeats))
                           for conv in ("direct", "winograd")}
            lines.append(f"| {threads} | {'one core busy' if busy else 'idle'} | {medians['direct']:.3f} | "
                         f"{medians['winograd']:.3f} | {medians['direct'] / medians['winograd']:.2f}x |")
            print(lines[-1], flush=True)
    record(args.results, "vggish_conv", f"VGGish convolutions, direct against Winograd: one pass of {args.batch} "
           f"examples, median of {args.repeats}", "\n".join(lines))


if __name__ == "__main__":
    main()
