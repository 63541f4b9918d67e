"""Where sedscale keeps what it can rebuild: model grids and the kernel's machine code.

Why one module: ``sedscale fit``, campaigns and the kernel's numba cache must agree on one
place, or a second campaign of the same configuration rebuilds every grid (the README demo run
into a new campaign directory: 39.9 s, 66 MB of grids rebuilt) and a fresh install compiles a
kernel another process already compiled. A base module (no sedscale imports), so the ``sed``
layer, campaigns and commands all resolve the same way.

Order, for grids: a directory configured explicitly (``sedscale fit --cache-dir``; a site's
``grid_cache`` where one is set), else ``$SEDSCALE_CACHE_DIR/grids``, else the user's cache,
``$XDG_CACHE_HOME/sedscale/grids`` (``~/.cache/sedscale/grids`` by default). The kernel's
numba cache is ``numba/`` under the same root. The grid cache is safe to share between
processes, nodes and campaigns: files are content-addressed by a key over configuration,
filters, redshift nodes, version and a digest of the ``sed`` layer's sources (a grid other
physics code built is never read), and written atomically (:mod:`sedscale.sed.grid_store`).
It is never pruned: remove the folder to reclaim the space (grids are rebuilt on demand).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

#: Overrides the root of sedscale's caches (grids in ``grids/``, the kernel in ``numba/``).
CACHE_DIR_ENV = "SEDSCALE_CACHE_DIR"


def cache_root() -> Path:
    """``$SEDSCALE_CACHE_DIR``, else ``$XDG_CACHE_HOME/sedscale``, else ``~/.cache/sedscale``."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sedscale"


def grid_cache_dir(configured: Optional[str | Path] = None) -> Path:
    """The model-grid cache: ``configured`` when given, else ``cache_root()/grids`` (absolute, so a
    campaign can record it for its tasks on other nodes)."""
    if configured:
        return Path(configured).expanduser().absolute()
    return (cache_root() / "grids").absolute()
