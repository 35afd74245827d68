"""The full coverage set runs only when asked for (`-m coverage_full`): it needs the
`coverage-full` extra, whose torch alone is a large download."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    if "coverage_full" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="the full coverage set runs under -m coverage_full")
    for item in items:
        if item.get_closest_marker("coverage_full"):
            item.add_marker(skip)
