"""The vocalab modules a script or module runs, found by a transitive scan of its imports.

Every ``import`` in a module counts, including those inside functions (they run
when called), except those under ``if TYPE_CHECKING:``. Importing ``vocalab.a.b``
runs ``vocalab/a/__init__.py`` too; package ``__init__`` files that hold only a
docstring run no code and are left out. Used for an extractor's code version (its
feature cache fingerprint) and by the test that keeps DVC's code deps exact.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Sequence

PACKAGE = "vocalab"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


_HOLDS_STATEMENTS = (ast.stmt, ast.excepthandler, ast.match_case)


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
            # imports are statements, and only statements hold statements: expressions are not walked
            if isinstance(child, _HOLDS_STATEMENTS):
                visit(child)

    visit(tree)
    return names


def runs_code(path: Path) -> bool:
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


def import_closure(src: Path, roots: list[Path], *, package: str = PACKAGE,
                   stop: frozenset[Path] | set[Path] = frozenset()) -> set[Path]:
    """Files under ``src/<package>`` that the scripts or modules ``roots`` import, transitively.

    Files in ``stop`` are neither included nor followed.
    """
    seen: set[Path] = set(stop)
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
                if target is None or target in stop:
                    continue
                if target.name != "__init__.py" or runs_code(target):
                    found.add(target)
                todo.append(target)
    return found


def source_root() -> Path:
    """The folder that holds the ``vocalab`` package."""
    import vocalab

    return Path(vocalab.__file__).parent.parent


def code_files(roots: list[str], *, also: tuple[str, ...] = (), stop: tuple[str, ...] = (),
               src: Path | None = None) -> list[Path]:
    """The files of modules ``roots``, of every vocalab module they import, and of ``also``; modules
    ``stop`` are neither included nor followed."""
    src = source_root() if src is None else Path(src)

    def files_of(names: Sequence[str]) -> set[Path]:
        return {f for f in (module_file(src, name) for name in names) if f is not None}

    stopped = files_of(stop)
    files = files_of(roots) - stopped
    return sorted(import_closure(src, sorted(files), stop=stopped) | files | files_of(also))


def file_hashes(files: Sequence[Path], src: Path) -> dict[str, str]:
    """SHA-256 prefixes of ``files``, keyed by path relative to the source folder ``src``.

    What a cache of computed results keys on, so an edit to any of that code misses the cache.
    """
    import hashlib

    return {path.relative_to(src).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:16] for path in files}


def code_hashes(roots: list[str], *, also: tuple[str, ...] = (), stop: tuple[str, ...] = (),
                src: Path | None = None) -> dict[str, str]:
    """:func:`file_hashes` of :func:`code_files`."""
    src = source_root() if src is None else Path(src)
    return file_hashes(code_files(roots, also=also, stop=stop, src=src), src)


def third_party_imports(files: Sequence[Path]) -> set[str]:
    """Top-level names of the modules outside vocalab and the standard library that ``files`` import."""
    import sys

    names = set()
    for path in files:
        for name in _imported_names(ast.parse(path.read_text(encoding="utf-8")), "__main__", False):
            top = name.split(".")[0]
            if top and top != PACKAGE and top not in sys.stdlib_module_names and top != "__future__":
                names.add(top)
    return names


def distribution_versions(modules: set[str]) -> dict[str, str]:
    """``lib:<distribution>`` -> installed version, for the distributions that provide ``modules``
    (imported or not, so every process gets the same answer); a module no distribution provides is
    left out."""
    import importlib.metadata

    versions, unresolved = {}, []
    for module in sorted(modules):
        try:
            versions[f"lib:{module}"] = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            unresolved.append(module)
    if unresolved:  # the module's name is not its distribution's (sklearn is scikit-learn's)
        providers = importlib.metadata.packages_distributions()
        for module in unresolved:
            for distribution in providers.get(module, ()):
                versions[f"lib:{distribution}"] = importlib.metadata.version(distribution)
    return versions


def library_versions(libraries: tuple[str, ...]) -> dict[str, str]:
    """``lib:<name>`` -> installed version ('absent' if not installed), imported or not."""
    import importlib.metadata

    versions = {}
    for library in libraries:
        try:
            versions[f"lib:{library}"] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            versions[f"lib:{library}"] = "absent"
    return versions
