"""``vocalab review BASE [HEAD]``: a change as a reviewer reads it, in one Markdown file and its HTML twin.

The report holds, for two revisions (git revisions or ``dvc exp`` names; HEAD defaults to the
files in the workspace):

- the compact metrics table with the paired comparison of :mod:`vocalab.compare` (UAR before
  and after, the difference with its speaker-bootstrap 95 % interval, McNemar's p);
- HEAD's leaderboard;
- the per-class recalls that changed, per set;
- only the plots whose bytes changed, BASE beside HEAD, each 490 px wide so a pair fits a
  1,000 px column;
- the params that changed.

Everything is local: the Markdown links the images it copies next to it, and the HTML
carries them inline, so the folder (or the HTML file alone) opens offline and nothing is
uploaded anywhere.
"""

from __future__ import annotations

import base64
import html
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vocalab.compare import WORKTREE, compare_sets, read_predictions, resolve, table

METRICS = "metrics"
PARAMS = "params.yaml"
LEADERBOARD = "metrics/leaderboard.md"
IMAGE_WIDTH = 490  # two side by side fit a 1,000 px column
#: a per-class recall that moved less than this is not listed
RECALL_STEP = 0.0005
NUMBER = ' class="num"'


def read_bytes(root: Path, commit: str, path: str) -> bytes | None:
    """A file's bytes at ``commit`` (resolved; :data:`WORKTREE`: on disk); None where it does not exist."""
    if commit == WORKTREE:
        file = root / path
        return file.read_bytes() if file.is_file() else None
    shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True)
    return shown.stdout if shown.returncode == 0 else None


def list_plots(root: Path, commit: str) -> list[str]:
    """Every PNG under metrics/ at ``commit`` (resolved; :data:`WORKTREE`: on disk)."""
    if commit == WORKTREE:
        return sorted(p.relative_to(root).as_posix() for p in (root / METRICS).rglob("*.png"))
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", METRICS],
                            cwd=root, capture_output=True, text=True)
    return sorted(name for name in listed.stdout.split("\n") if name.endswith(".png"))


def flat(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for nested mappings; lists stay values."""
    if not isinstance(mapping, dict):
        return {prefix: mapping} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(flat(value, name) if isinstance(value, dict) and value else {name: value})
    return out


def changed_params(before: bytes | None, after: bytes | None) -> list[tuple[str, str, str]]:
    """``(key, before, after)`` for every params key whose value differs ("-": absent)."""
    import yaml

    old, new = (flat(yaml.safe_load(text) or {}) if text else {} for text in (before, after))
    return [(key, _show(old.get(key, "-")), _show(new.get(key, "-")))
            for key in sorted(set(old) | set(new)) if old.get(key, "-") != new.get(key, "-")]


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


def recall_changes(base: pd.DataFrame, head: pd.DataFrame) -> list[tuple[str, int, float, float]]:
    """``(class, test utterances, recall before, recall after)`` for each class whose recall moved."""
    joined = base.merge(head, on="utt_id", suffixes=("_base", "_head"))
    rows = []
    for label, group in joined.groupby("actual_base", sort=True):
        before = float((group["predicted_base"] == label).mean())
        after = float((group["predicted_head"] == label).mean())
        if abs(after - before) >= RECALL_STEP:
            rows.append((str(label), len(group), before, after))
    return rows


def _inline(text: str) -> str:
    """Markdown's ``**bold**`` as HTML, the rest escaped."""
    parts = html.escape(text).split("**")
    return "".join(f"<b>{part}</b>" if i % 2 else part for i, part in enumerate(parts))


def _html_table(rows: list[list[str]]) -> str:
    """A Markdown table's rows (header, separator, body) as an HTML table, right-aligned where it says ``---:``."""
    header, body = rows[0], rows[1:]
    right: set[int] = set()
    if body and all(set(cell) <= set("-: ") for cell in body[0]):
        right = {i for i, cell in enumerate(body[0]) if cell.endswith(":")}
        body = body[1:]

    def cells(row: list[str], tag: str) -> str:
        return "".join(f"<{tag}{NUMBER if i in right else ''}>{_inline(c)}</{tag}>" for i, c in enumerate(row))

    return (f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>"
            + "".join(f"<tr>{cells(row, 'td')}</tr>" for row in body) + "</tbody></table>")


@dataclass
class Report:
    """The report's sections, each rendered once as Markdown and once as HTML."""

    title: str
    markdown: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.markdown.append(f"## {text}\n")
        self.html.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.markdown.append(f"{text}\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def table(self, headers: list[str], rows: list[list[str]], *, right: frozenset[int] = frozenset()) -> None:
        align = ["---:" if i in right else "---" for i in range(len(headers))]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        self.markdown.append("\n".join(lines) + "\n")
        self.html.append(_html_table([headers, align, *rows]))

    def markdown_block(self, text: str) -> None:
        """Markdown already written (tables and paragraphs, as the leaderboard): as it is, and as HTML tables and
        paragraphs in the HTML."""
        self.markdown.append(text.rstrip() + "\n")
        rows: list[list[str]] = []
        for line in text.rstrip().split("\n") + [""]:
            if line.startswith("|"):
                rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
                continue
            if rows:
                self.html.append(_html_table(rows))
                rows = []
            if line.strip():
                self.html.append(f"<p>{_inline(line.strip())}</p>")

    def images(self, caption: str, pair: list[tuple[str, str | None, bytes | None]]) -> None:
        """Images side by side: ``(label, file relative to the report, bytes)``; a missing side is named."""
        md_cells, html_cells = [], []
        for label, rel, data in pair:
            if rel is None or data is None:
                md_cells.append(f"<td>{label}: none</td>")
                html_cells.append(f"<td>{html.escape(label)}: none</td>")
                continue
            md_cells.append(f'<td>{label}<br><img src="{rel}" width="{IMAGE_WIDTH}"></td>')
            inline = base64.b64encode(data).decode()
            html_cells.append(f'<td>{html.escape(label)}<br><img src="data:image/png;base64,{inline}" '
                              f'width="{IMAGE_WIDTH}"></td>')
        self.markdown.append(f"**{caption}**\n\n<table><tr>{''.join(md_cells)}</tr></table>\n")
        self.html.append(f"<h3>{html.escape(caption)}</h3><table class=\"plots\"><tr>{''.join(html_cells)}"
                         f"</tr></table>")

    def write(self, folder: Path) -> tuple[Path, Path]:
        md, page = folder / "review.md", folder / "review.html"
        md.write_text(f"# {self.title}\n\n" + "\n".join(self.markdown))
        style = ("body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
                 "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}.num{text-align:right}"
                 ".plots td{border:none}pre{overflow-x:auto}")
        page.write_text(f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}"
                        f"</title><style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>"
                        + "".join(self.html) + "</body></html>\n")
        return md, page


def review(root: Path, base: str, head: str = WORKTREE, out: Path | None = None) -> tuple[Path, Path]:
    """Write ``review.md`` and ``review.html`` (and the changed plots) into ``out``; their paths."""
    root = Path(root)
    out = Path(out) if out is not None else root / "review"
    # each revision resolved once: every file below is read at that commit
    base_commit, head_commit = (r if r == WORKTREE else resolve(root, r) for r in (base, head))
    before, after = read_predictions(root, base), read_predictions(root, head)  # their errors name the revision
    report = Report(f"vocalab review: {base} → {head}")

    report.heading("Metrics")
    rows, only = compare_sets(before, after, base, head)
    report.markdown_block(table(rows, base, head))
    common = [row.name for row in rows]
    if only:
        report.paragraph("Not compared: " + ", ".join(only) + ".")

    report.heading(f"Leaderboard ({head})")
    board = read_bytes(root, head_commit, LEADERBOARD)
    report.markdown_block(board.decode() if board else f"{head} has no {LEADERBOARD}.")

    report.heading("Per-class recall that changed")
    recall_rows = [[name, label, str(n), f"{b:.3f}", f"{a:.3f}", f"{a - b:+.3f}"]
                   for name in common for label, n, b, a in recall_changes(before[name], after[name])]
    if recall_rows:
        report.table(["set", "class", "test utts", f"recall {base}", f"recall {head}", "change"], recall_rows,
                     right=frozenset({2, 3, 4, 5}))
    else:
        report.paragraph("No per-class recall changed.")

    report.heading("Plots whose data changed")
    if out.exists():
        shutil.rmtree(out)
    (out / "plots").mkdir(parents=True)
    n_changed = 0
    for path in sorted(set(list_plots(root, base_commit)) | set(list_plots(root, head_commit))):
        old, new = read_bytes(root, base_commit, path), read_bytes(root, head_commit, path)
        if old == new:
            continue
        n_changed += 1
        pair = []
        for side, data in ((base, old), (head, new)):
            rel = None
            if data is not None:
                rel = f"plots/{n_changed}-{'base' if side == base else 'head'}.png"
                (out / rel).write_bytes(data)
            pair.append((side, rel, data))
        report.images(path, pair)
    if not n_changed:
        report.paragraph("No plot changed.")

    report.heading("Params that changed")
    params = changed_params(read_bytes(root, base_commit, PARAMS), read_bytes(root, head_commit, PARAMS))
    if params:
        report.table(["key", base, head], [list(row) for row in params])
    else:
        report.paragraph("No param changed.")
    return report.write(out)
