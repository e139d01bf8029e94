"""Which modules of the features package are extractors, and their params sections, read from source.

A module is an extractor module when a class in it carries ``@register_extractor``;
its section is the decorator's ``section=`` (a string literal, or a module-level
string constant of its own or imported from a sibling module). Nothing is imported,
so the params check (:mod:`vocalab.params`) knows every extractor's section without
the cost of torch, and the registry (:mod:`.registry`) imports extractor modules only,
never the engine's or helpers.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from vocalab.errors import ParamsError

PACKAGE = "vocalab.features"
DECORATOR = "register_extractor"
_FOLDER = Path(__file__).parent


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module's string constants, and those it imports from a sibling module (``from .x import NAME``)."""
    constants = _string_constants(tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and (node.module.startswith(PACKAGE + ".")
                                                                 or node.level == 1):
            sibling = _FOLDER / f"{node.module.rsplit('.', 1)[-1]}.py"
            if sibling.is_file():
                theirs = _string_constants(ast.parse(sibling.read_text(encoding="utf-8")))
                constants.update({alias.asname or alias.name: theirs[alias.name] for alias in node.names
                                  if alias.name in theirs})
    return constants


def _declared_section(tree: ast.Module, path: Path) -> str | None:
    """The ``section`` of the module's ``@register_extractor(...)``, or None if it has none."""
    constants = _constants(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            func = decorator.func if isinstance(decorator, ast.Call) else None
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called != DECORATOR:
                continue
            for keyword in decorator.keywords:
                if keyword.arg == "section":
                    value = keyword.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        return value.value
                    if isinstance(value, ast.Name) and value.id in constants:
                        return constants[value.id]
            raise ParamsError(f"{path}: @{DECORATOR} needs section= a string literal, or a module-level "
                              f"string constant (its own or a sibling module's), so the params check can read "
                              f"it without importing the module.")
    return None


@functools.lru_cache(maxsize=None)
def sections() -> dict[str, str]:
    """Extractor name -> its params section, for every extractor module of the features package."""
    found = {}
    for path in sorted(_FOLDER.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        source = path.read_text(encoding="utf-8")
        if DECORATOR not in source:  # cheap test first; the parse confirms it
            continue
        section = _declared_section(ast.parse(source), path)
        if section is not None:
            found[path.stem] = section
    return found
