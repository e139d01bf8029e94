"""Counts the kinds of bad input the robustness suite tried, and how many were handled."""

from __future__ import annotations

RESULTS: dict[str, bool] = {}  # kind of bad input -> handled as the table says


def pytest_runtest_logreport(report):
    if report.when == "call" and "robustness" in report.nodeid and "[" in report.nodeid:
        RESULTS[report.nodeid.split("[", 1)[1].rstrip("]")] = report.passed


def pytest_terminal_summary(terminalreporter):
    if RESULTS:
        handled = sum(RESULTS.values())
        terminalreporter.write_line(f"robustness: {len(RESULTS)} kinds of bad input and fault tried, {handled} handled")
