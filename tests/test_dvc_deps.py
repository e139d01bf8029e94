"""dvc.yaml lists, for every stage, exactly the vocalab code its script imports.

A change to a module then reruns exactly the stages that run it. When this test
fails it names the stage and the files to add (or remove) under its ``deps:``.
The project's DVC config is checked here too.
"""

from __future__ import annotations

import ast
import textwrap

import yaml

from tests.conftest import REPO_ROOT
from tests.dvc_deps import check_stages
from vocalab.imports import import_closure


def test_every_stage_lists_exactly_the_code_it_imports():
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    problems = check_stages(stages, REPO_ROOT, REPO_ROOT / "src")
    assert not problems, "dvc.yaml deps differ from the stages' imports (add 'missing', drop 'unused'):\n" + \
        yaml.safe_dump(problems)


def test_dvc_yaml_is_what_vocalab_pipeline_writes():
    """The extraction stages and every stage's code deps are derived; run 'vocalab pipeline' when this fails."""
    from vocalab.features.registry import all_extractors
    from vocalab.pipeline import render

    text = (REPO_ROOT / "dvc.yaml").read_text()
    assert render(text, REPO_ROOT, REPO_ROOT / "src", all_extractors()) == text, \
        "dvc.yaml is stale: run 'vocalab pipeline' in the project root"


def test_the_generator_writes_a_stage_per_extractor_and_keeps_the_rest(tmp_path):
    from vocalab.features.registry import all_extractors
    from vocalab.pipeline import render

    text = (REPO_ROOT / "dvc.yaml").read_text()
    stages = yaml.safe_load(text)["stages"]
    # a stage's hand-written code deps dropped, an extraction stage removed: both come back
    damaged = text.replace("      - src/vocalab/splits.py\n", "", 1)
    start = damaged.index("  extract_handcrafted:")
    damaged = damaged[:start] + damaged[damaged.index("  extract_opensmile:"):]
    assert render(damaged, REPO_ROOT, REPO_ROOT / "src", all_extractors()) == text
    assert {name for name in stages if name.startswith("extract_")} == {f"extract_{n}" for n in all_extractors()}
    assert stages["train"]["params"] and "# six headline numbers" in text  # the rest is left as written


def test_reading_the_manifest_or_training_needs_no_corpus_layout():
    src = REPO_ROOT / "src"
    for script in ("split.py", "train.py", "evaluate.py", "summary.py"):
        closure = {p.relative_to(src).as_posix() for p in import_closure(src, [REPO_ROOT / "stages" / script])}
        assert not {p for p in closure if p.startswith("vocalab/datasets/")}, script
    extract = import_closure(src, [REPO_ROOT / "stages" / "extract.py", src / "vocalab/features/handcrafted.py"])
    assert not {p.name for p in extract} & {"vggish.py", "wav2vec2.py", "torch_runtime.py", "training.py"}


def _project(tmp_path, script: str, deps: list[str], cmd: str = "python stages/probe.py --out x"):
    (tmp_path / "stages").mkdir(exist_ok=True)
    (tmp_path / "stages" / "probe.py").write_text(textwrap.dedent(script))
    src = tmp_path / "src" / "vocalab"
    (src / "features").mkdir(parents=True)
    (src / "__init__.py").write_text('"""docstring only: runs no code"""\n')
    (src / "features" / "__init__.py").write_text('"""docstring only"""\n')
    (src / "audio.py").write_text("from vocalab.errors import AudioError\n")
    (src / "errors.py").write_text("class AudioError(Exception):\n    pass\n")
    (src / "features" / "mel.py").write_text("import numpy\n")
    (src / "features" / "lazy.py").write_text("def f():\n    from vocalab.features import mel\n")
    (src / "features" / "hinted.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from vocalab import audio\n")
    stages = {"probe": {"cmd": cmd, "deps": ["stages/probe.py", "data/in", *deps]}}
    return check_stages(stages, tmp_path, tmp_path / "src")


def test_an_import_added_without_its_dependency_is_named(tmp_path):
    problems = _project(tmp_path, "from vocalab.audio import load\n", ["src/vocalab/audio.py"])
    assert problems == {"probe": {"missing": ["src/vocalab/errors.py"], "unused": []}}  # transitive


def test_imports_inside_functions_count_and_type_hints_do_not(tmp_path):
    problems = _project(tmp_path, "import vocalab.features.lazy\nimport vocalab.features.hinted\n",
                        ["src/vocalab/features/lazy.py", "src/vocalab/features/hinted.py",
                         "src/vocalab/audio.py"])
    assert problems == {"probe": {"missing": ["src/vocalab/features/mel.py"], "unused": ["src/vocalab/audio.py"]}}


def test_a_complete_list_passes_and_a_missing_script_is_named(tmp_path):
    assert _project(tmp_path, "from vocalab import audio\n", ["src/vocalab/audio.py", "src/vocalab/errors.py"]) == {}
    stages = {"probe": {"cmd": "python stages/probe.py", "deps": ["src/vocalab/audio.py", "src/vocalab/errors.py"]}}
    assert check_stages(stages, tmp_path, tmp_path / "src")["probe"]["missing"] == ["stages/probe.py"]


def test_the_extractor_a_generic_extraction_stage_loads_is_its_code(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "extract.py").write_text("from vocalab import audio\n")  # the stage's script
    cmd = "python stages/extract.py --extractor mel --manifest m.csv --features f"
    problems = _project(tmp_path, "", ["src/vocalab/audio.py", "src/vocalab/errors.py"], cmd=cmd)
    assert problems == {"probe": {"missing": ["stages/extract.py", "src/vocalab/features/mel.py"], "unused": []}}


def test_imports_nested_in_any_statement_are_found():
    """Imports in a method, a try, a with, a loop or a match case count; one under TYPE_CHECKING does not."""
    from vocalab.imports import _imported_names

    source = textwrap.dedent("""
        import typing
        if typing.TYPE_CHECKING:
            import vocalab.hinted
        class Reader:
            def read(self):
                try:
                    from vocalab import audio
                except ImportError:
                    import vocalab.fallback
                with open("x"):
                    for _ in range(2):
                        from . import sibling
        match 1:
            case 1:
                import vocalab.matched
        value = [x for x in range(3)]
    """)
    names = _imported_names(ast.parse(source), "vocalab.features.probe", is_package=False)
    assert {"vocalab.audio", "vocalab.fallback", "vocalab.features.sibling", "vocalab.matched"} <= names
    assert "vocalab.hinted" not in names


def test_the_project_keeps_dvc_from_reaching_out():
    """Usage analytics and the daily version check are off in the project's own config (a clone gets them)."""
    from dvc.config import Config

    core = Config(dvc_dir=REPO_ROOT / ".dvc", validate=True)["core"]
    assert core["analytics"] is False
    assert core["check_update"] is False
