"""The code a DVC stage runs, found by a transitive scan of its script's imports.

A stage's ``cmd`` names its script (``python stages/<name>.py``); the generic
extraction script also imports ``vocalab.features.<extractor>``, named by its
``--extractor`` argument. Every ``import`` in a module counts, including those inside
functions (they run when the stage calls them), except those under
``if TYPE_CHECKING:``. Importing ``vocalab.a.b`` runs ``vocalab/a/__init__.py``
too; package ``__init__`` files that hold only a docstring run no code and are left out.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

PACKAGE = "vocalab"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names imported by a module (``from a import b`` gives ``a`` and ``a.b``)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _runs_code(path: Path) -> bool:
    """False for a package ``__init__`` that holds only a docstring (and ``from __future__``)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for node in body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        return True
    return False


def module_file(src: Path, name: str) -> Path | None:
    """The file of module ``name`` under ``src`` (a package's ``__init__.py``), or None."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(src: Path, roots: list[Path], *, package: str = PACKAGE) -> set[Path]:
    """Files under ``src/<package>`` that the scripts or modules ``roots`` import, transitively."""
    seen: set[Path] = set()
    todo = list(roots)
    found: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.is_relative_to(src):
            rel = path.relative_to(src).with_suffix("")
            parts = list(rel.parts)
            is_package = parts[-1] == "__init__"
            module = ".".join(parts[:-1] if is_package else parts)
        else:
            module, is_package = "__main__", False
        for name in _imported_names(ast.parse(path.read_text(encoding="utf-8")), module, is_package):
            if name != package and not name.startswith(package + "."):
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # every package on the way runs its __init__
                target = module_file(src, ".".join(parts[:depth]))
                if target is None:
                    continue
                if target.name != "__init__.py" or _runs_code(target):
                    found.add(target)
                todo.append(target)
    return found


def stage_roots(cmd: str, root: Path, src: Path) -> list[Path]:
    """The script a stage runs, and the extractor module the generic extraction script loads."""
    args = shlex.split(cmd)
    scripts = [a for a in args if a.startswith("stages/") and a.endswith(".py")]
    roots = [root / s for s in scripts]
    if "stages/extract.py" in scripts and "--extractor" in args:
        extractor = args[args.index("--extractor") + 1]
        target = module_file(src, f"{PACKAGE}.features.{extractor}")
        if target is not None:
            roots.append(target)
    return roots


def listed_code(deps: list[str], root: Path, src: Path) -> set[Path]:
    """The code files a stage lists under ``deps`` (folders expand to their .py files)."""
    prefix = src.relative_to(root).as_posix() + "/"
    files: set[Path] = set()
    for dep in deps:
        if not dep.startswith(prefix):
            continue
        path = root / dep
        files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return {f for f in files if f.name != "__init__.py" or _runs_code(f)}


def check_stages(stages: dict, root: Path, src: Path) -> dict[str, dict[str, list[str]]]:
    """``{stage: {"missing": [...], "unused": [...]}}`` for each stage whose code deps differ from its imports."""
    problems = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        cmd = body.get("cmd", "")
        cmd = " ".join(cmd) if isinstance(cmd, list) else cmd
        cmd = re.sub(r"\$\{[^}]*\}", "X", cmd)
        roots = stage_roots(cmd, root, src)
        if not roots:
            continue
        # the extractor module the generic script loads is code the stage runs, like what it imports
        imported = import_closure(src, roots) | {r for r in roots if r.is_relative_to(src)}
        listed = listed_code([d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])], root, src)
        missing = sorted(p.relative_to(root).as_posix() for p in imported - listed)
        unused = sorted(p.relative_to(root).as_posix() for p in listed - imported)
        scripts_missing = [r.relative_to(root).as_posix() for r in roots
                           if not r.is_relative_to(src) and r.relative_to(root).as_posix() not in body.get("deps", [])]
        if missing or unused or scripts_missing:
            problems[name] = {"missing": scripts_missing + missing, "unused": unused}
    return problems
