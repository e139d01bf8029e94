"""The README as a map: one section per topic, links that land, commands that are the tested ones."""

from __future__ import annotations

import re
import shlex
from collections import Counter

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _headings() -> list[str]:
    text = re.sub(r"```.*?```", "", README, flags=re.S)  # a '#' inside a code block is no heading
    return [line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{1,6} ", line)]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_no_heading_is_repeated():
    repeated = [h for h, n in Counter(_headings()).items() if n > 1]
    assert not repeated, f"headings used twice: {repeated}"


def test_every_link_inside_the_readme_lands_on_a_heading():
    anchors = {_anchor(h) for h in _headings()}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and links <= anchors, f"links to no heading: {sorted(links - anchors)}"


def test_setup_is_two_commands_and_ci_runs_the_test_one():
    setup = README.split("## Setup and run", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", setup, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make repro", "make test"]
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_the_review_command_is_the_one_the_e2e_test_measures():
    from tests.e2e.test_pipeline import EXP_SHOW

    line = next(line for line in README.splitlines() if line.startswith("dvc exp show --only-changed"))
    assert shlex.split(line)[3:] == EXP_SHOW


MAX_LINES = 450


def _section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _code_lines() -> list[str]:
    """Every command line of the README's shell code blocks, continuation lines joined."""
    lines = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split("  #")[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def test_the_readme_is_a_map_of_at_most_450_lines_with_a_table_of_contents():
    assert len(README.splitlines()) <= MAX_LINES
    contents = README.split("\n## ", 1)[0]
    sections = re.findall(r"^## (.+)$", README, flags=re.M)
    for title in sections:
        assert f"](#{_anchor(title)})" in contents, f"'{title}' is not in the table of contents"
    newcomer = ["Setup and run", "Running on your corpus", "Experiments and review", "Predicting new audio"]
    assert all(title in sections for title in newcomer)


def test_every_module_is_in_the_layout():
    layout = _section("Layout")
    named = Counter(re.findall(r"[\w]+\.py\b", layout))
    src = REPO_ROOT / "src" / "vocalab"
    modules = [path for path in sorted(src.rglob("*.py")) if path.name != "__init__.py"]
    needed = Counter(path.name for path in modules)  # two modules of one name must both be named
    missing = [str(path.relative_to(src)) for path in modules if named[path.name] < needed[path.name]]
    packages = [f"{path.name}/" for path in sorted(src.iterdir()) if path.is_dir() and path.name != "__pycache__"
                and f"{path.name}/" not in layout]
    assert not missing and not packages, f"not in the README's Layout: {missing + packages}"


def _makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w-]+):", text, flags=re.M))


def _options_of_script(path) -> set[str]:
    """The ``--options`` a script's argparse declares (every quoted ``--name`` in its source)."""
    return set(re.findall(r'"(--[\w-]+)"', path.read_text()))


def _vocalab_options(subcommand: str) -> set[str] | None:
    from vocalab.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    sub = commands.choices.get(subcommand)
    if sub is None:
        return None
    return {option for action in sub._actions for option in action.option_strings}


def test_commands_in_code_blocks_name_what_exists():
    problems = []
    targets = _makefile_targets()
    lines = _code_lines()
    assert any(line.startswith("vocalab predict") for line in lines)
    for line in lines:
        for command in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
            try:
                words = shlex.split(command)
            except ValueError:
                continue
            if not words:
                continue
            if words[0] == "make":
                problems += [f"make target '{w}'" for w in words[1:] if "=" not in w and w not in targets]
            elif words[0] == "python" and len(words) > 1 and words[1].endswith(".py"):
                script = REPO_ROOT / words[1]
                if not script.is_file():
                    problems.append(f"script {words[1]}")
                    continue
                known = _options_of_script(script) | (_options_of_script(REPO_ROOT / "benchmarks" / "bench_project.py")
                                                      | _options_of_script(REPO_ROOT / "benchmarks" / "results.py")
                                                      if words[1].startswith("benchmarks/") else set())
                problems += [f"{words[1]} {w}" for w in words[2:] if w.startswith("--") and w.split("=")[0] not in known]
            elif words[0] == "vocalab":
                options = _vocalab_options(words[1]) if len(words) > 1 else None
                if options is None:
                    problems.append(f"vocalab {' '.join(words[1:2])}")
                    continue
                problems += [f"vocalab {words[1]} {w}" for w in words[2:] if w.startswith("--") and w not in options]
    assert not problems, f"the README's code blocks name what does not exist: {problems}"


def test_no_module_docstring_carries_a_measured_figure():
    """Speeds, sizes and timings go stale: they belong in benchmarks/RESULTS.md, written by the benchmarks."""
    import ast

    measured = re.compile(r"\d[\d.,]*\s*(?:GB/s|MB/s|audio-s/s|GFLOP/s)|\d[\d.,]*\s*[x×] (?:faster|slower)|"
                          r"on \d+ (?:cores|CPUs)|\d[\d.,]*\s*(?:ms|s) (?:per|a) (?:pass|file|batch|clip)")
    found = []
    for path in sorted((REPO_ROOT / "src" / "vocalab").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        found += [f"{path.name}: {m.group(0)}" for m in measured.finditer(doc)]
    assert not found, f"measured figures in module docstrings: {found}"
