"""The package's shape: no import circle, one declared extractor contract, no test fixture in the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT
from vocalab.imports import _imported_names

SRC = REPO_ROOT / "src"


def _modules() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for path in sorted((SRC / "vocalab").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the vocalab modules it imports, at any depth of its code (not under TYPE_CHECKING)."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        imported = _imported_names(ast.parse(path.read_text(encoding="utf-8")), name, is_package)
        graph[name] = {other for other in imported if other in modules and other != name and not modules[other][1]}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for other in sorted(graph.get(node, ())):
            if state.get(other) == 1:
                return path[path.index(other):] + [other]
            if other not in state:
                found = visit(other)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_circle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


ENGINE = ("src/vocalab/features/extraction.py", "src/vocalab/features/backends.py",
          "src/vocalab/features/compute.py", "src/vocalab/predict.py", "stages/extract.py")


def test_the_engine_calls_only_declared_hooks():
    """No extractor hook is discovered with getattr or hasattr: every one is declared by the base class."""
    from vocalab.features.base import Extractor

    declared = {name for name in dir(Extractor) if not name.startswith("__")} | set(Extractor.__annotations__)
    for file in ENGINE:
        tree = ast.parse((REPO_ROOT / file).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr",
                                                                                                   "hasattr"):
                target = node.args[0]
                assert not (isinstance(target, ast.Name) and "extractor" in target.id), \
                    f"{file}:{node.lineno} discovers an extractor hook with {node.func.id}"
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "extractor":
                assert node.attr in declared, f"{file}:{node.lineno}: extractor.{node.attr} is not declared in base"


def test_every_registered_extractor_follows_the_contract():
    from vocalab.features.base import Extractor
    from vocalab.features.registry import all_extractors

    for name, spec in all_extractors().items():
        assert issubclass(spec.build, Extractor) and spec.build.name == name


def test_test_fixtures_live_outside_the_feature_package():
    from vocalab.features.discovery import sections

    features = {p.stem for p in (SRC / "vocalab/features").glob("*.py")}
    assert not {"vggish_reference", "wav2vec2_tiny"} & features
    assert {"vggish_reference", "wav2vec2_tiny"} <= {p.stem for p in (SRC / "vocalab/testing").glob("*.py")}
    assert set(sections()) == {"checkpoint", "encoder", "handcrafted", "notebook180", "opensmile", "vggish", "voice", "wav2vec2",
                              "waveform"}
    pipeline = set(import_graph()) - {m for m in import_graph() if m.startswith("vocalab.testing")}
    assert not any(m.startswith("vocalab.testing") for name in pipeline for m in import_graph()[name])
