"""``sedscale prepare``: build a catalog's triage grids and compile the kernel before a campaign.

Run it once where the grid cache is shared (a login node of the site, or this machine before
``sedscale submit --site local``): the campaign's workers then read every triage grid instead of
building the same blocks on every node at once (:mod:`sedscale.sed.prebuild`). ``scripts/install.sh``
runs it for the README demo. Preparing never changes a result, only when grids are built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from sedscale.commands._help import CATALOG_HELP

if TYPE_CHECKING:
    import numpy as np

    from sedscale.catalog.profiles import CatalogProfile
    from sedscale.catalog.source import CatalogSource
    from sedscale.sed.config import FitConfig


def prepare(
    catalog: List[str] = typer.Argument(..., help=CATALOG_HELP),
    workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="shipped workflow name or YAML file (default: default)"),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="generic | euclid-q1 | euclid-q1-irsa | roman | roman-generic | FILE.yaml (default: the workflow's)"),
    site: str = typer.Option("local", "--site", help="site config name or YAML file: its grid_cache is where the grids go"),
    photoz: Optional[bool] = typer.Option(None, "--photoz/--no-photoz", help="also build the photo-z grid (default: the workflow's photoz, when some row has no redshift)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="build processes (default: the usable cores, at most 8)"),
    kernel: bool = typer.Option(True, "--kernel/--no-kernel", help="compile the fit kernel into the numba cache too"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="grid cache (default: the site's grid_cache, else $SEDSCALE_CACHE_DIR/grids or ~/.cache/sedscale/grids)"),
) -> None:
    """Build the triage grids a campaign of CATALOG will read, and compile the fit kernel, into
    the shared caches — once, in parallel — so no worker builds them during the campaign."""
    from sedscale.cache_dirs import grid_cache_dir
    from sedscale.campaign.workflow import load_workflow
    from sedscale.catalog.catalog_input import catalog_arg, open_for_profile
    from sedscale.commands._common import make_console, progress_bar
    from sedscale.engines.site import load_site
    from sedscale.sed.prebuild import prebuild

    wf = load_workflow(workflow)
    target = cache_dir or grid_cache_dir(load_site(site).grid_cache)
    source, prof = open_for_profile(catalog_arg(catalog), profile or wf.profile)
    blocks, n_known = _known_z_blocks(source, prof, wf.fit, wf.validation_rules().redshift_max)
    want_photoz = (wf.photoz and n_known < source.num_rows) if photoz is None else photoz
    with progress_bar() as bar:
        task = bar.add_task("building grids", total=None, rate="")
        report = prebuild(wf.fit, prof.filters(), blocks, target, photoz=want_photoz, kernel=kernel,
                          workers=workers, on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    kernel_note = f"kernel compiled or loaded in {report.kernel_seconds:.1f} s; " if report.kernel_seconds is not None else ""
    make_console(stderr=False).print(f"prepared {source.name}: {kernel_note}{report.blocks_built} lattice blocks built "
                  f"({report.nodes_built} redshift nodes), {report.blocks_cached} already cached; "
                  f"photo-z grid {report.photoz_grid}; into {target} in {report.seconds:.1f} s")


def _known_z_blocks(source: CatalogSource, profile: CatalogProfile, config: FitConfig,
                    redshift_max: float) -> tuple[np.ndarray, int]:
    """The lattice blocks the catalog's redshifts need, and how many rows have one — read batch by
    batch from the redshift column alone (bounded memory at any catalog size). A redshift outside
    [0, ``redshift_max``] counts as given (validation quarantines its row; it is not fitted for a
    photo-z) but needs no block."""
    import numpy as np
    import pyarrow as pa

    from sedscale.catalog.read import iter_column
    from sedscale.sed.grid import lattice_blocks

    blocks = np.zeros(0, np.int64)
    n_known = 0
    if not profile.redshift:
        return blocks, n_known
    for cf in source.files:
        for col in iter_column(source.form, cf.path, profile.redshift):
            z = col.cast(pa.float64()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
            z = z[np.isfinite(z)]
            n_known += int(z.size)
            z = z[(z >= 0) & (z <= redshift_max)]
            if z.size:
                blocks = np.union1d(blocks, lattice_blocks(config, z))
    return blocks, n_known


def register(app: typer.Typer) -> None:
    """Add the ``prepare`` command to the root app."""
    app.command("prepare")(prepare)
