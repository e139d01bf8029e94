"""What DVC looks at before any stage runs, checked first with vocalab's own message: ``vocalab check``.

``dvc repro`` builds the stage graph and hashes ``download``'s dependency, the content of
``data.path``, before any stage of vocalab runs. So three mistakes stop it with DVC's own
line instead of a vocalab message naming the key or file and the fix:

- a ``data.path`` inside a folder the pipeline writes (``data/raw``): a cycle;
- a ``data.path`` holding one (``.``): overlapping outputs;
- a broken link or a link loop under ``data.path``: ``[Errno 2]`` or ``[Errno 40]``.

``make repro`` runs :func:`check_project` first; ``vocalab check`` runs it alone. It also
validates every params section, as the ``check_params`` stage does inside the pipeline.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Iterator

from vocalab.errors import ManifestError, ParamsError

#: at most this many offending links are named in the message
_NAMED = 5


def check_sections(params: str | Path) -> int:
    """Build every section's config from ``params`` (each raises its own one-line error); the number checked."""
    from vocalab.datasets.config import DataConfig
    from vocalab.features.registry import all_extractors
    from vocalab.models.config import TrainConfig
    from vocalab.parallel import ParallelConfig
    from vocalab.params import load_section
    from vocalab.splits import SplitConfig
    from vocalab.vad import SECTION as VAD_SECTION, VADConfig

    sections = [(DataConfig, "data"), (SplitConfig, "split"), (TrainConfig, "train")]
    sections += [(spec.config, spec.section) for spec in all_extractors().values()]
    for config, section in sections:
        load_section(config, section, params)
    load_section(ParallelConfig, "parallel", params, optional=True)
    load_section(VADConfig, VAD_SECTION, params, optional=True)
    return len(sections) + 2


def _paths(entries: Any) -> Iterator[str]:
    """The paths of a stage's ``outs``/``metrics``/``plots`` list (a path, or ``{path: options}``)."""
    for entry in entries or ():
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            yield from (key for key in entry if isinstance(key, str))


def pipeline_outputs(dvc_yaml: str | Path) -> dict[str, str]:
    """Every path a stage of ``dvc_yaml`` writes -> the stage's name."""
    import yaml

    if not Path(dvc_yaml).is_file():
        raise ParamsError(f"no '{dvc_yaml}': run vocalab check in the project's root, where dvc.yaml is.")
    try:
        stages = (yaml.safe_load(Path(dvc_yaml).read_text()) or {}).get("stages") or {}
    except (yaml.YAMLError, AttributeError) as err:
        raise ParamsError(f"'{dvc_yaml}' is not a DVC pipeline file ({type(err).__name__}). Restore it from git "
                          f"(git checkout -- dvc.yaml) or rewrite its stages with vocalab pipeline.") from err
    return {path: name for name, stage in stages.items() if isinstance(stage, dict)
            for kind in ("outs", "metrics", "plots") for path in _paths(stage.get(kind))}


def check_data_path(data_path: str, outputs: dict[str, str], root: Path) -> None:
    """``data.path`` must neither lie inside a stage's output nor hold one."""
    where = (root / data_path).resolve()
    for out, stage in outputs.items():
        written = (root / out).resolve()
        if where == written or written in where.parents:
            raise ParamsError(
                f"params key 'data.path' = {data_path!r} is inside '{out}', which stage '{stage}' writes, so DVC "
                f"would stop on a cycle in the pipeline. Keep the corpus outside the pipeline's outputs: under "
                f"corpus/ in the project, or a full path elsewhere.")
        if where in written.parents:
            raise ParamsError(
                f"params key 'data.path' = {data_path!r} holds '{out}', which stage '{stage}' writes, so DVC "
                f"would stop on overlapping paths (the corpus would change with every run). Point data.path at "
                f"the corpus folder itself: under corpus/ in the project, or a full path elsewhere.")


def unfollowable_links(root: Path) -> list[tuple[str, str]]:
    """Links under ``root`` that lead nowhere or back to themselves: ``(relative path, why)``, hidden ones too.

    DVC hashes every file under a dependency folder, through links, and stops at the first it
    cannot open; vocalab's own index would count these as skipped.
    """
    found: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            try:
                os.stat(path)
            except FileNotFoundError:
                found.append((os.path.relpath(path, root), f"a link to '{os.readlink(path)}', which does not exist"))
            except OSError as err:
                if err.errno != errno.ELOOP:
                    raise
                found.append((os.path.relpath(path, root), f"a link to '{os.readlink(path)}' that leads back to "
                                                           f"itself"))
    return found


def check_links(data_path: str, root: Path) -> None:
    folder = root / data_path
    if not folder.is_dir():
        return
    links = unfollowable_links(folder)
    if links:
        named = "; ".join(f"'{rel}' ({why})" for rel, why in links[:_NAMED])
        more = f" and {len(links) - _NAMED} more" if len(links) > _NAMED else ""
        raise ManifestError(
            f"data.path {data_path!r} holds {len(links)} link(s) that cannot be followed: {named}{more}. DVC hashes "
            f"this folder before any stage runs and would stop at the first. Remove them (find '{folder}' -xtype l "
            f"lists them; add -delete to remove) or point them at files.")


def check_project(root: str | Path = ".", params: str = "params.yaml", dvc_yaml: str = "dvc.yaml") -> str:
    """Every check above, for the project at ``root``; a one-line summary when all pass."""
    from vocalab.datasets.config import DataConfig
    from vocalab.params import load_section

    root = Path(root)
    n_sections = check_sections(root / params)
    data = load_section(DataConfig, "data", root / params)
    check_data_path(str(data.path), pipeline_outputs(root / dvc_yaml), root)
    check_links(str(data.path), root)
    return f"check: {params}: {n_sections} sections valid; data.path {data.path!r}: no cycle, every link followable"
