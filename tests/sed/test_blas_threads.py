"""Grids and fits give the same bits whatever the BLAS/OpenMP thread count (issue 13): a
multi-threaded GEMM splits its sums by thread count, and grids are cached by a key that cannot
know it. Each run is a fresh process (thread pools are sized at start-up) with a fresh cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = r"""
import hashlib, sys
import numpy as np
from sedscale.catalog.photometry import Photometry
from sedscale.sed import grid as grid_mod
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig

cfg = FitConfig.from_dict({"sfh": {"age": [0.5, 2.0, 5.0], "tau": [0.3, 3.0]},
                           "stellar": {"metallicity": [0.4, 1.0]},
                           "dust_attenuation": {"av": [0.0, 0.5, 1.5]}, "nebular": {"enabled": False},
                           "dust_emission": {"enabled": False}, "error_floor": 0.05})
bands = ("lsst_u", "lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")
rng = np.random.default_rng(5)
z = rng.uniform(0.3, 0.5, 40)
grid = grid_mod.build_grid(cfg, bands, grid_mod.lattice_nodes(cfg, np.arange(304, 312)), cache_dir=sys.argv[1])
true = grid.flux[3][rng.integers(0, grid.n_models, z.size)].astype(np.float64) * 1e10
err = true / 20.0
phot = Photometry(np.arange(z.size), true + rng.normal(size=true.shape) * err, err, z, bands, np.arange(z.size))
res = fit_photometry(phot, cfg, cache_dir=sys.argv[1])
h = hashlib.sha256()
for part in (grid.flux, grid.valid, *grid.intensive.values(), *grid.extensive.values(),
             res.chi2_best, res.best_index, res.n_good_models, res.best_flux,
             *(v for pair in res.estimates.values() for v in pair)):
    h.update(np.ascontiguousarray(part).tobytes())
print(h.hexdigest())
"""


def _digest(threads: int, cache: Path) -> str:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(cache)], env=env, check=True,
                         capture_output=True, text=True, timeout=600)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow  # two fresh interpreters that each build a grid: ~30 s
def test_one_and_two_blas_threads_give_the_same_bits(tmp_path: Path) -> None:
    one = _digest(1, tmp_path / "one")
    two = _digest(2, tmp_path / "two")
    assert len(one) == 64 and one == two
