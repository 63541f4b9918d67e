"""Shared pytest configuration: a per-session cache directory for expensive artefacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sedscale_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory shared by the whole test session (grids, tiny models)."""
    root = os.environ.get("SEDSCALE_TEST_CACHE")
    path = Path(root) if root else tmp_path_factory.mktemp("sedscale-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path
