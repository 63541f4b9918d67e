"""Compile the fused kernel into sedscale's numba cache ahead of a campaign.

    python -m sedscale.sed.warmup      # prints where the kernel is cached and what was compiled

Why: compiling the kernel takes tens of seconds per process on a cold cache; run once on a
node (or a login node sharing the file system and CPU type) it leaves every signature the
fitting path uses in the cache (:mod:`sedscale.sed.kernel_cache`), so workers only load. The
results do not depend on it: compiled and loaded kernels give the same bits.
"""

from __future__ import annotations

import json

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.kernel_numba import kernel_provenance


def compile_production_signatures() -> None:
    """Fit a small mock the way production does (known redshift, then photo-z) so that numba
    compiles and caches every signature of the kernel's entry points."""
    bands = ("euclid_vis", "euclid_y", "euclid_j", "euclid_h")
    rng = np.random.default_rng(0)
    n = 8
    flux = rng.uniform(0.5, 5.0, (n, len(bands)))
    flux[0] *= 1e4  # a high-S/N row takes the kernel's exact path
    phot = Photometry(source_id=np.arange(n, dtype=np.int64), filters=bands, flux=flux,
                      error=flux * 0.05, redshift=np.linspace(0.3, 2.0, n),
                      row_index=np.arange(n, dtype=np.int64))
    cfg = FitConfig.model_validate({"sfh": {"age": [0.5, 3.0], "tau": [1.0]},
                                    "stellar": {"metallicity": [1.0]},
                                    "dust_attenuation": {"av": [0.0, 1.0]},
                                    "nebular": {"enabled": False},
                                    "dust_emission": {"enabled": False}})
    fit_photometry(phot, cfg)
    fit_photometry(phot, cfg, photoz=True)


if __name__ == "__main__":
    compile_production_signatures()
    print(json.dumps(kernel_provenance(), indent=2))
