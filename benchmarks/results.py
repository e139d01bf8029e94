"""``benchmarks/RESULTS.md``: every benchmark writes its latest table there, in a block of its own.

A block is keyed by the benchmark and what it ran on (``accuracy emodb-2s ...``); a later run
with the same key replaces it, another key adds a block under "Latest runs". Each block
names the date, the CPU kind, the core count and the command, so no figure stands
without its machine. ``--results -`` writes nothing.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
LATEST = "## Latest runs"


def cpu_kind() -> str:
    """The vector extensions that matter here, as /proc/cpuinfo names them, and the CPU model."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    flags = set(re.findall(r"\w+", text))
    model = re.search(r"model name\s*:\s*(.*)", text)
    if "amx_bf16" in flags:
        kind = "AVX-512 + AMX BF16"
    elif "avx512_bf16" in flags:
        kind = "AVX-512 + AVX-512 BF16"
    elif "avx512f" in flags:
        kind = "AVX-512"
    elif "avx2" in flags:
        kind = "AVX2 only"
    else:
        kind = "no AVX2"
    return f"{kind} ({model.group(1).strip() if model else 'unknown model'})"


def add_results_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default=str(RESULTS),
                        help="write this run's table into this file's block for it (default "
                             "benchmarks/RESULTS.md; '-': do not write)")


def record(results: str, key: str, title: str, body: str) -> None:
    """Write ``body`` under ``title`` into the block ``key`` of ``results`` (replacing an earlier run's)."""
    if results == "-":
        return
    path = Path(results)
    start, end = f"<!-- {key}: start -->", f"<!-- {key}: end -->"
    command = " ".join(["python", *(a if re.fullmatch(r"[\w./:=+,-]+", a) else repr(a) for a in sys.argv)])
    block = (f"{start}\n### {title}\n\n{datetime.date.today().isoformat()} · {cpu_kind()} · {os.cpu_count()} "
             f"CPUs · `{command}`\n\n{body.strip()}\n{end}")
    text = path.read_text(encoding="utf-8") if path.is_file() else f"# Benchmark results\n\n{LATEST}\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        if LATEST not in text:
            text = text.rstrip("\n") + f"\n\n{LATEST}\n"
        head, tail = text.split(LATEST, 1)
        following = tail.find("\n## ")
        section, after = (tail, "") if following < 0 else (tail[:following], tail[following:])
        text = head + LATEST + section.rstrip("\n") + "\n\n" + block + "\n" + after
    path.write_text(text, encoding="utf-8")
    print(f"wrote the table into {path}")
