"""``dvc.yaml`` kept in step with the code: ``vocalab pipeline`` writes what it derives, a test checks it.

Two parts of ``dvc.yaml`` are derived, never written by hand:

* **the extraction stages**, one ``extract_<name>`` per registered extractor
  (:mod:`vocalab.features.registry`): its command, its params section (and the
  ``train`` keys that say whether any set uses its stores), the ``vad`` stage's table
  and params where it reads speech regions, and the stores it writes. Adding a feature
  set is its module, its params section and its test; ``vocalab pipeline`` then writes
  its stage.
* **the stores the ``fuse`` stage depends on**: every extracted store, since a fusion
  may join any of them (DVC cannot take a list of dependencies from params).
* **every stage's code dependencies**: the ``src/vocalab/...`` files its script imports,
  transitively (:func:`vocalab.imports.import_closure`), plus the extractor module the
  generic extraction script loads. A change to a module then reruns exactly the stages
  that run it.

Everything else (the other stages, their data, params, metrics, plots and comments) is
the file's own and is left as written.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from vocalab.imports import PACKAGE, import_closure, module_file

DVC_YAML = "dvc.yaml"
FUSE = "fuse"
STORES = "data/features/"
_EXTRACT = "extract_"
_STAGE = re.compile(r"^  ([A-Za-z0-9_@-]+):")


def stage_roots(cmd: str, root: Path, src: Path) -> list[Path]:
    """The script a stage runs, and the extractor module the generic extraction script loads."""
    args = shlex.split(re.sub(r"\$\{[^}]*\}", "X", cmd))
    scripts = [a for a in args if a.startswith("stages/") and a.endswith(".py")]
    roots = [root / s for s in scripts]
    if "stages/extract.py" in scripts and "--extractor" in args:
        extractor = args[args.index("--extractor") + 1]
        target = module_file(src, f"{PACKAGE}.features.{extractor}")
        if target is not None:
            roots.append(target)
    return roots


def code_deps(cmd: str, root: Path, src: Path) -> list[str]:
    """The ``src/vocalab`` files a stage with command ``cmd`` runs, as dvc.yaml lists them."""
    roots = stage_roots(cmd, root, src)
    files = import_closure(src, roots) | {r for r in roots if r.is_relative_to(src)}
    return sorted(path.relative_to(root).as_posix() for path in files)


#: the ``vad`` stage's table of speech regions, read by the extractors that declare ``reads_speech_region``
REGIONS = "data/vad.csv"


def extraction_cmd(spec: Any) -> str:
    """The command of an extractor's stage."""
    regions = f" --regions {REGIONS}" if spec.build.reads_speech_region else ""
    return (f"python stages/extract.py --extractor {spec.name} --manifest data/manifest.csv{regions} "
            f"--features data/features")


def extraction_stage(spec: Any) -> str:
    """The ``extract_<name>`` stage of one registered extractor."""
    outputs = list(spec.outputs)
    comment = (f"  # {', '.join(outputs[:-1])} and {outputs[-1]}, from one pass over the audio"
               if len(outputs) > 1 else "")
    if spec.build.reads_speech_region:
        comment += f"{'; it' if comment else '  #'} reads each utterance's speech region (vad)"
    lines = [
        f"  {_EXTRACT}{spec.name}:{comment}",
        f"    cmd: {extraction_cmd(spec)}",
        "    deps:",
        "      - stages/extract.py",
        "      - data/manifest.csv",
        *([f"      - {REGIONS}"] if spec.build.reads_speech_region else []),
        "    params:",
        f"      - {spec.section}",
        "      - train.feature_sets  # a set no entry uses is not extracted",
        "      - train.fusions",
        *([f"      - vad"] if spec.build.reads_speech_region else []),
        "    outs:",
        *(f"      - data/features/{output}" for output in outputs),
    ]
    return "\n".join(lines) + "\n"


def _blocks(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first stage, and each stage's name and text (its comments and blank lines after it)."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _STAGE.match(line)]
    if not starts:
        raise ValueError(f"{DVC_YAML} has no stages")
    head = "".join(lines[:starts[0]])
    blocks = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        blocks.append((_STAGE.match(lines[start]).group(1), "".join(lines[start:end])))
    return head, blocks


def _with_code_deps(block: str, deps: list[str], prefix: str) -> str:
    """``block`` with the ``prefix`` entries of its ``deps:`` list replaced by ``deps``, after its other entries."""
    lines = block.splitlines(keepends=True)
    for i, line in enumerate(lines):
        found = re.match(r"^(\s+)deps:\s*$", line)
        if found:
            break
    else:
        return block
    item = found.group(1) + "  - "
    end = i + 1
    while end < len(lines) and lines[end].startswith(item):
        end += 1
    kept = [line for line in lines[i + 1:end] if not line[len(item):].startswith(prefix)]
    return "".join(lines[:i + 1] + kept + [f"{item}{dep}\n" for dep in deps] + lines[end:])


def render(text: str, root: Path, src: Path, extractors: dict[str, Any]) -> str:
    """``dvc.yaml``'s text with its extraction stages and every stage's code deps derived from the code.

    The extraction stages take the place of those in ``text`` (after the stage before
    the first of them), in the registry's order.
    """
    head, blocks = _blocks(text)
    stages = yaml.safe_load(text)["stages"]
    names = [name for name, _ in blocks]
    extract_at = [i for i, name in enumerate(names) if name.startswith(_EXTRACT)]
    first = extract_at[0] if extract_at else len(blocks)
    trailing = ""
    if extract_at:  # keep the blank line (and any comment) that closed the last extraction stage
        last_block = blocks[extract_at[-1]][1]
        trailing = last_block[len(last_block.rstrip("\n")) :]
    generated = [(f"{_EXTRACT}{name}", extraction_stage(spec) + "\n") for name, spec in extractors.items()]
    if generated:
        generated[-1] = (generated[-1][0], generated[-1][1].rstrip("\n") + (trailing or "\n\n"))
    kept = [(name, body) for name, body in blocks if not name.startswith(_EXTRACT)]
    before = [b for b in kept if names.index(b[0]) < first]
    after = [b for b in kept if names.index(b[0]) > first]
    prefix = src.relative_to(root).as_posix() + "/"
    out = []
    for name, body in before + generated + after:
        if name.startswith(_EXTRACT):
            cmd = extraction_cmd(extractors[name[len(_EXTRACT):]])
        else:
            stage = stages[name]
            cmd = (stage.get("do") or stage).get("cmd", "")
            cmd = " ".join(cmd) if isinstance(cmd, list) else cmd
        if name == FUSE:  # a fusion may join any extracted sets: it depends on each store
            stores = [f"{STORES}{output}" for spec in extractors.values() for output in spec.outputs]
            body = _with_code_deps(body, stores, STORES)
        if stage_roots(cmd, root, src):
            body = _with_code_deps(body, code_deps(cmd, root, src), prefix)
        out.append(body)
    return head + "".join(out).rstrip("\n") + "\n"


def write(root: Path, *, check: bool = False) -> bool:
    """Render ``root/dvc.yaml``; write it (or with ``check``, only compare). True if it was up to date."""
    from vocalab.features.registry import all_extractors

    root = Path(root)
    path = root / DVC_YAML
    text = path.read_text(encoding="utf-8")
    src = root / "src"
    rendered = render(text, root, src, all_extractors())
    if rendered == text:
        return True
    if not check:
        path.write_text(rendered, encoding="utf-8")
    return False
