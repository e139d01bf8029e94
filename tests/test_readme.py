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
