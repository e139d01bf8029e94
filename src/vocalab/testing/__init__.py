"""Helpers for tests and benchmarks: tiny models saved to a folder, reference implementations to compare with.

Nothing in the pipeline imports this package.
"""
