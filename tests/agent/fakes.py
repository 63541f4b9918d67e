"""Test doubles for the agent's unit tests: a fit function with a known answer (no SED physics).

``fake_fit`` scores a configuration against what each source "needs" (encoded in its flux
column 0, so the photometry alone decides): AGN on, more attenuation, nebular with high logU.
Every missing need adds 8 to χ²_red and pushes one band's residual beyond 3σ. Used only to test
the loop's bookkeeping (grouping, budgets, determinism, never-worse); the physics tests use the
real fitter on mock catalogs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed.config import FitConfig

FILTERS = ("lsst_u", "lsst_g", "lsst_r", "lsst_i", "lsst_z", "lsst_y", "euclid_vis", "euclid_y", "euclid_j", "euclid_h")
NEEDS = {1: "agn", 2: "dust", 4: "lines"}


@dataclass
class FakeResult:
    chi2_red: np.ndarray
    chi2_best: np.ndarray
    dof: np.ndarray
    n_good_models: np.ndarray
    residual_sigma: np.ndarray
    best_flux: np.ndarray
    estimates: dict = field(default_factory=dict)


class FakeFitter:
    """Callable like ``fit_photometry``; records every call (config hash, sources)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def __call__(self, phot: Photometry, config: FitConfig, *, photoz: bool = False, cache_dir=None) -> FakeResult:
        self.calls.append((config.hash(), tuple(int(s) for s in phot.source_id)))
        n, b = phot.flux.shape
        need = phot.flux[:, 0].astype(int)
        miss = np.zeros(n)
        resid = np.zeros((n, b))
        if True:
            agn_ok = config.agn.enabled
            dust_ok = max(config.dust_attenuation.av) >= 4.0
            lines_ok = config.nebular.enabled and max(config.nebular.logu) >= -2.0
        for bit, ok, band in ((1, agn_ok, b - 1), (2, dust_ok, 0), (4, lines_ok, 5)):
            m = ((need & bit) > 0) & (not ok)
            miss += m
            resid[m, band] = -5.0 if bit == 2 else 5.0
            if bit == 2:
                resid[m, 1] = -4.0  # UV over-predicted in two bands
        # a small, config-dependent offset so different configs give different χ²
        jitter = (int(config.hash()[:4], 16) % 97) / 1000.0
        chi2_red = 1.0 + 8.0 * miss + jitter
        dof = np.full(n, b - 1)
        est = {"av": (np.full(n, 1.0), np.full(n, 0.2)), "logmstar": (10.0 - 0.1 * miss, np.full(n, 0.1)),
               "age_mw": (np.full(n, 0.5), np.full(n, 0.1))}
        return FakeResult(chi2_red, chi2_red * dof, dof, np.full(n, 5), resid, np.ones((n, b)), est)


def fake_photometry(needs: list[int], start_id: int = 1000) -> Photometry:
    n, b = len(needs), len(FILTERS)
    flux = np.ones((n, b))
    flux[:, 0] = needs
    return Photometry(
        source_id=np.arange(start_id, start_id + n, dtype=np.int64),
        flux=flux, error=np.full((n, b), 0.1), redshift=np.full(n, 0.5),
        filters=FILTERS, row_index=np.arange(n, dtype=np.int64),
    )
