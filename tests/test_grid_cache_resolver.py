"""The one grid-cache resolver ``sedscale fit`` and campaigns share: configured directory, else
``$SEDSCALE_CACHE_DIR/grids``, else ``$XDG_CACHE_HOME/sedscale/grids``, else ``~/.cache/sedscale/grids``;
the kernel's numba cache sits beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedscale.cache_dirs import cache_root, grid_cache_dir
from sedscale.commands.fit import default_cache_dir
from sedscale.sed import kernel_cache


def test_the_resolver_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEDSCALE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert grid_cache_dir() == tmp_path / "home" / ".cache" / "sedscale" / "grids"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert grid_cache_dir() == tmp_path / "xdg" / "sedscale" / "grids"
    monkeypatch.setenv("SEDSCALE_CACHE_DIR", str(tmp_path / "env"))
    assert grid_cache_dir() == tmp_path / "env" / "grids"
    assert grid_cache_dir(str(tmp_path / "site")) == tmp_path / "site"  # a site's grid_cache wins
    assert grid_cache_dir(None) == grid_cache_dir("") == tmp_path / "env" / "grids"


def test_fit_and_the_kernel_cache_resolve_under_the_same_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEDSCALE_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == grid_cache_dir() == tmp_path / "grids"
    assert kernel_cache.cache_root() == cache_root() / "numba" == tmp_path / "numba"


def test_a_relative_configured_cache_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert grid_cache_dir("grids-here") == tmp_path / "grids-here"  # recorded for tasks in other directories


def test_a_campaign_uses_the_cache_it_recorded_and_an_older_one_its_own(tmp_path: Path) -> None:
    from sedscale.campaign.meta import CampaignMeta
    from sedscale.campaign.paths import CampaignPaths

    paths = CampaignPaths.at(tmp_path / "camp")
    shared = tmp_path / "shared-grids"
    assert CampaignMeta.model_construct(grid_cache=str(shared)).grid_cache_dir(paths) == shared
    assert CampaignMeta.model_construct(grid_cache=None).grid_cache_dir(paths) == paths.cache_dir  # made before
