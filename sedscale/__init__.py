"""sedscale: SED fitting of billion-row photometric catalogs on HPC machines.

Layers (each knows only those below it; see DESIGN.md):
``catalog`` (Parquet in, validation, partition plans), ``sed`` (physics, grids, fitter),
``agent`` (policies and the propose/execute/evaluate/distil loop), ``serve`` (vLLM instances),
``campaign`` (Zarr store, manifest, resume, accounting), ``engines`` (Parsl, Dask, sites).
"""

from sedscale._version import __version__

__all__ = ["__version__"]
