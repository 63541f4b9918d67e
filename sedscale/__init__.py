"""sedscale: SED fitting of billion-row photometric catalogs on HPC machines.

Layers (each knows only those below it; see DESIGN.md):
``catalog`` (Parquet in, validation, partition plans), ``sed`` (physics, grids, fitter),
``agent`` (policies and the propose/execute/evaluate/distil loop), ``serve`` (vLLM instances),
``campaign`` (Zarr store, manifest, resume, accounting), ``engines`` (Parsl, Dask, sites).

``sedscale.open_results(DIR)`` gives a campaign's results as an xarray Dataset
(:func:`sedscale.campaign.results_dataset.open_results`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sedscale._version import __version__

if TYPE_CHECKING:
    from sedscale.campaign.results_dataset import open_results

__all__ = ["__version__", "open_results"]


def __getattr__(name: str) -> object:
    """Resolve ``open_results`` on first use (PEP 562): importing the package, which every layer
    does, must not load the campaign layer, xarray and zarr (the agent layer is checked to load
    no campaign module)."""
    if name == "open_results":
        from sedscale.campaign.results_dataset import open_results

        return open_results
    raise AttributeError(f"module 'sedscale' has no attribute {name!r}")
