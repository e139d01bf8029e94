"""Adding a feature set is its module, its params section and its test: nothing else is edited by hand.

A toy extractor (frame energy in dB) is added to a copy of the project. ``vocalab
pipeline`` then writes its stage into ``dvc.yaml``, the params check knows its section,
its stage extracts a store, and no other file of the project changed.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import yaml

from tests.conftest import REPO_ROOT

TOY = '''
"""A toy feature set: the energy of each frame, in dB."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vocalab.audio import mono_signal
from vocalab.features.base import Extractor
from vocalab.features.registry import register_extractor
from vocalab.params import bounded, to_dict


@dataclass(frozen=True)
class ToyConfig:
    frame_length: int = bounded(400, ge=16)


@register_extractor(section="toy", config=ToyConfig)
class ToyExtractor(Extractor):
    sampling_rate = 16000
    dim = 1
    feature_names = ["energy_db"]

    def __init__(self, config: ToyConfig) -> None:
        self.config = config

    def meta(self) -> dict:
        return {"feature_set": "toy", "params": to_dict(self.config), "feature_names": self.feature_names,
                "frames_per_second": self.sampling_rate / self.config.frame_length,
                "sampling_rate": self.sampling_rate, "pretrained": False, "model": None}

    def extract(self, samples: np.ndarray, sampling_rate: int) -> np.ndarray:
        x = mono_signal(samples)
        n = self.config.frame_length
        frames = x[: len(x) // n * n].reshape(-1, n).astype(np.float64)
        return 10.0 * np.log10(np.mean(frames ** 2, axis=1, keepdims=True) + 1e-10)
'''

PROJECT = ("src/vocalab", "stages", "dvc.yaml", "params.yaml")


def _run(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "VOCALAB_CACHE": str(project / "cache"),
           "HF_HUB_OFFLINE": "1", "VOCALAB_WORKERS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_a_toy_feature_set_needs_its_module_its_params_section_and_dvc_yaml_written(tmp_path, ravdess_tree):
    project = tmp_path / "project"
    for name in PROJECT:
        source = REPO_ROOT / name
        target = project / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    params = project / "params.yaml"
    # the corpus the copy runs on (not part of adding a feature set)
    text = params.read_text()
    text = text.replace("  source: synthetic ", "  source: local     ", 1)
    text = text.replace("  path: corpus ", f"  path: {ravdess_tree} ", 1)
    params.write_text(text)
    baseline = tmp_path / "baseline"
    shutil.copytree(project, baseline)

    # what a contributor writes: the module and its params section ...
    (project / "src/vocalab/features/toy.py").write_text(TOY.lstrip())
    text = params.read_text().replace("  feature_sets: [", "  feature_sets: [toy, ", 1)  # a model for it too
    params.write_text(text + "\ntoy:                       # the toy feature set\n  frame_length: 320\n")
    # ... and the one command that derives the rest
    assert "dvc.yaml written" in _run(project, "-m", "vocalab.cli", "pipeline").stdout
    assert "up to date" in _run(project, "-m", "vocalab.cli", "pipeline", "--check").stdout

    stage = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["extract_toy"]
    assert stage["params"] == ["toy", "train.feature_sets", "train.fusions"] and stage["outs"] == ["data/features/toy"]
    assert "--extractor toy" in stage["cmd"]
    assert {"src/vocalab/features/toy.py", "src/vocalab/features/compute.py", "stages/extract.py"} <= set(stage["deps"])

    # the stage runs: the params check knows the section, the registry the extractor
    _run(project, "stages/download.py", "--out", "data/raw")
    _run(project, "stages/manifest.py", "--raw", "data/raw", "--out", "data/manifest.csv",
         "--rejects", "data/rejects.csv", "--metrics", "data/manifest.json")
    _run(project, "stages/extract.py", "--extractor", "toy", "--manifest", "data/manifest.csv",
         "--features", "data/features")
    frames = np.load(project / "data/features/toy/frames.npy")
    assert frames.shape[1] == 1 and len(frames) == 24 * (24000 // 320)  # 24 clips of 1.5 s

    # and nothing else of the project was edited
    before, after = _files(baseline), _files(project)
    changed = {name for name in before.keys() & after.keys() if not name.startswith(("data/", "cache/"))
               and not filecmp.cmp(before[name], after[name], shallow=False)}
    added = {name for name in after.keys() - before.keys() if not name.startswith(("data/", "cache/"))}
    assert changed == {"params.yaml", "dvc.yaml"} and added == {"src/vocalab/features/toy.py"}

    # a misspelled section of the new set is still named, as any other
    params.write_text(params.read_text().replace("\ntoy:", "\ntoyy:"))
    done = subprocess.run([sys.executable, "stages/extract.py", "--extractor", "toy", "--manifest",
                           "data/manifest.csv", "--features", "data/features"], cwd=project, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(project / "src")}, timeout=120)
    assert done.returncode == 2 and "unknown params section 'toyy'" in done.stderr and "'toy'" in done.stderr


def test_editing_one_extractor_or_the_plumbing_leaves_the_other_caches_valid(tmp_path):
    """The fingerprint covers each extractor's own numerical code: an edit elsewhere misses no other cache."""
    from vocalab.features.cache import code_version
    from vocalab.features.discovery import sections

    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "src/vocalab", src / "vocalab", ignore=shutil.ignore_patterns("__pycache__"))
    names = sorted(sections())

    def versions() -> dict[str, dict[str, str]]:
        return {name: code_version(f"vocalab.features.{name}", src=src) for name in names}

    def edit(module: str) -> None:
        path = src / "vocalab" / module
        path.write_text(path.read_text() + "\n# an edit\n")

    original = versions()
    for plumbing in ("params.py", "errors.py", "features/registry.py", "features/base.py", "features/cache.py",
                     "features/backends.py", "features/extraction.py", "parallel.py"):
        edit(plumbing)
    assert versions() == original, "editing the plumbing must not invalidate any feature cache"
    edit("features/handcrafted.py")
    after = versions()
    assert after["handcrafted"] != original["handcrafted"]
    assert {n: v for n, v in after.items() if n != "handcrafted"} == \
        {n: v for n, v in original.items() if n != "handcrafted"}
    edit("features/compute.py")  # the computation every extractor's frames pass through
    assert all(versions()[name] != after[name] for name in names)


def test_the_registry_imports_extractor_modules_only():
    script = textwrap.dedent("""
        import sys
        from vocalab.features.registry import extractor
        from vocalab.params import load_params
        load_params()
        assert not any(m.startswith(("torch", "vocalab.features.v", "vocalab.features.w")) for m in sys.modules), \\
            "the params check imported an extractor"
        extractor("handcrafted")
        assert "torch" not in sys.modules and "vocalab.testing" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
