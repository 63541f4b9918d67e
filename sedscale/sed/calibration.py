"""Are the posterior intervals calibrated? Mocks with a known truth, coverages and PIT histograms.

Two kinds of mock (tests/sed/test_calibration*.py, benchmarks/bench_calibration.py):

* **Drawn from the model's own priors** (:func:`prior_mock`): a grid model drawn uniformly (the
  grid's implicit prior), a surviving mass drawn uniformly in log, Gaussian noise with the stated
  errors, fitted with the same grid and no systematic floor. If the posterior is right, the
  16–84% interval holds the truth for 68% of sources and the 2.5–97.5% one for 95%. A_V is a grid
  parameter whose percentiles spread each grid value over its cell
  (:mod:`sedscale.sed.posterior`); its truth is drawn the same way — uniformly within the cell of
  the drawn model's value — so the check is a randomised PIT, not inflated by the truth sitting
  exactly on a grid value.
* **Independent** (:func:`bagpipes_mock`): ``bagpipes.model_galaxy`` (its own code, a delayed
  SFH with ages and τ off the fitted grid, continuous A_V), at known redshift and S/N 25 in every
  band. The truth is the surviving stellar mass — bagpipes' mass formed times sedscale's
  surviving fraction for the same SFH and metallicity (the quantity ``logmstar`` estimates; the
  mock's ages and τ lie on a fine lattice whose surviving fractions are computed exactly).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed import cosmology
from sedscale.sed.api import FitResult, model_table
from sedscale.sed.config import FitConfig
from sedscale.sed.filters import load_filter
from sedscale.sed.grid import build_grid, build_lattice_grid, lattice_coordinates

#: The calibrated quantities of the prior mocks (the bagpipes mocks check ``logmstar``).
QUANTITIES = ("logmstar", "logsfr", "av")
PIT_BINS = 10

#: The calibration tests' and benchmark's grid: ages to 8 Gyr, three τ, two metallicities, eight
#: A_V steps (480 models) — modest, so a test builds it in seconds. Dense where the mocks are, it
#: needs a smaller mismatch allowance than the default grid: its floor is 0.05 (0.7 of the
#: bagpipes mocks' log M* inside 16–84% at 0.05, 0.79 at the default grid's 0.07).
CALIBRATION_GRID: dict[str, object] = {
    "error_floor": 0.05,
    "sfh": {"family": "delayed", "age": [0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 8.0],
            "tau": [0.3, 1.0, 3.0]},
    "stellar": {"metallicity": [0.4, 1.0]},
    "dust_attenuation": {"av": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.3, 1.6]},
    "nebular": {"enabled": False}, "dust_emission": {"enabled": False},
}


@dataclass(frozen=True)
class Coverage:
    """How one quantity's intervals hold the truth over a mock sample."""

    quantity: str
    n: int
    within68: float  # share of sources with p16 ≤ truth ≤ p84
    within95: float  # share with p025 ≤ truth ≤ p975
    bias: float  # median of p50 − truth
    pit: np.ndarray  # (PIT_BINS,) counts of the PIT values

    def pit_text(self) -> str:
        """The PIT histogram as one line of bars (flat = calibrated, ∪ = too narrow)."""
        top = max(int(self.pit.max()), 1)
        bars = " ".join(f"{int(c):3d}{'#' * round(12 * c / top):<12}" for c in self.pit)
        return f"{self.quantity:9s} {bars}"


def coverage(result: FitResult, quantity: str, truth: np.ndarray) -> Coverage:
    """Coverage of ``quantity``'s percentiles over the fitted sources with a finite truth.

    PIT (the posterior CDF at the truth) is interpolated linearly between the five stored
    percentiles (levels 0.025 … 0.975; 0.0125/0.9875 beyond them): coarse inside, exact at the
    levels the coverages use."""
    pct = result.percentiles[quantity]
    q = np.column_stack([pct[s] for s in ("p025", "p16", "p50", "p84", "p975")])
    ok = np.asarray(result.fitted, bool) & np.all(np.isfinite(q), axis=1) & np.isfinite(truth)
    q, t = q[ok], np.asarray(truth, np.float64)[ok]
    levels = np.array([0.025, 0.16, 0.5, 0.84, 0.975])
    pit = np.array([np.interp(x, row, levels, left=0.0125, right=0.9875) for x, row in zip(t, q)])
    return Coverage(quantity, int(t.size), float(np.mean((q[:, 1] <= t) & (t <= q[:, 3]))),
                    float(np.mean((q[:, 0] <= t) & (t <= q[:, 4]))), float(np.median(q[:, 2] - t)),
                    np.histogram(pit, bins=PIT_BINS, range=(0.0, 1.0))[0])


def _jitter_in_cell(values: np.ndarray, grid_values: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Each value moved uniformly within its grid cell (midpoints to the neighbours; the end
    cells stop at the end values) — the distribution the percentiles spread a grid value over."""
    centres = np.unique(grid_values)
    if centres.size == 1:
        return values.copy()
    edges = np.concatenate([[centres[0]], 0.5 * (centres[1:] + centres[:-1]), [centres[-1]]])
    k = np.searchsorted(centres, values)
    return rng.uniform(edges[k], edges[k + 1])


def prior_mock(config: FitConfig, filters: Sequence[str], z: float, n: int, snr: float,
               seed: int, cache_dir: Path | None) -> tuple[Photometry, dict[str, np.ndarray]]:
    """``n`` sources at redshift ``z`` drawn from the grid of ``config`` (module docstring):
    S/N ``snr`` in every band, log surviving mass uniform in [9, 11]."""
    rng = np.random.default_rng(seed)
    grid = build_lattice_grid(config, filters, np.array([z]), cache_dir=cache_dir)
    _, t = lattice_coordinates(config, np.array([z]))
    flux = (1.0 - t[0]) * grid.flux[0].astype(np.float64) + t[0] * grid.flux[1].astype(np.float64)
    table = model_table(grid.intensive, grid.extensive)
    pick = rng.choice(np.flatnonzero(grid.valid[0] & grid.valid[1]), n)
    log_m = rng.uniform(9.0, 11.0, n)
    log_s = log_m - table.log_extensive[pick, table.extensive_names.index("logmstar")]
    true = 10 ** log_s[:, None] * flux[pick]
    err = true / snr
    obs = true + rng.normal(size=true.shape) * err
    phot = Photometry(np.arange(1, n + 1, dtype=np.int64), obs, err, np.full(n, z), tuple(filters),
                      np.arange(n, dtype=np.int64))
    av = grid.intensive["av"]
    truth = {"logmstar": log_m,
             "logsfr": log_s + table.log_extensive[pick, table.extensive_names.index("logsfr")],
             "av": _jitter_in_cell(av[pick], av, rng)}
    return phot, truth


#: The bagpipes mocks' SFH lattice: fine enough to be "off grid" for any fitting grid.
MOCK_AGES = np.round(np.geomspace(0.3, 9.0, 48), 4)
MOCK_TAUS = np.round(np.geomspace(0.2, 8.0, 16), 4)


def _surviving_fraction(metallicity: float, z: float) -> np.ndarray:
    """sedscale's surviving mass per unit mass formed on the mock lattice (age, τ) at one Z."""
    cfg = FitConfig.from_dict({
        "sfh": {"family": "delayed", "age": MOCK_AGES.tolist(), "tau": MOCK_TAUS.tolist()},
        "stellar": {"metallicity": [metallicity]},
        "dust_attenuation": {"enabled": False}, "nebular": {"enabled": False},
        "dust_emission": {"enabled": False},
    })
    grid = build_grid(cfg, ("euclid_h",), [z], persist=False)
    out = np.full((MOCK_AGES.size, MOCK_TAUS.size), np.nan)
    ia = np.searchsorted(MOCK_AGES, grid.intensive["age"])
    it = np.searchsorted(MOCK_TAUS, grid.intensive["tau"])
    out[ia, it] = grid.extensive["mstar"]
    return out


def _bagpipes_photometry(filters: Sequence[str], z: float, age: float, tau: float,
                         metallicity: float, av: float, folder: Path) -> np.ndarray:
    """µJy per M☉ formed of one bagpipes delayed-τ model, rescaled to sedscale's cosmology."""
    import bagpipes as pipes  # type: ignore[import-untyped]  # heavy (loads its grids): only for these mocks

    files = bagpipes_filter_files(filters, folder)
    comp = {"redshift": z, "t_bc": 0.01,
            "delayed": {"age": age, "tau": tau, "massformed": 0.0, "metallicity": metallicity},
            "dust": {"type": "Calzetti", "Av": av, "eta": 1.0, "qpah": 2.5, "umin": 1.0,
                     "gamma": 0.01}}
    model = pipes.model_galaxy(comp, filt_list=files, phot_units="mujy")
    return np.asarray(model.photometry, np.float64) * bagpipes_distance_rescale(z)


def bagpipes_filter_files(filters: Sequence[str], folder: Path) -> list[str]:
    """bagpipes reads filter curves from files: sedscale's curves written once into ``folder``."""
    files = []
    for band in filters:
        path = folder / f"{band}.dat"
        if not path.exists():
            f = load_filter(band)
            np.savetxt(path, np.c_[f.wavelength, f.throughput])
        files.append(str(path))
    return files


def bagpipes_distance_rescale(z: float) -> float:
    """Factor turning bagpipes' fluxes at ``z`` (its own cosmology) into sedscale's (Planck18)."""
    import bagpipes as pipes

    d_ref = np.interp(z, pipes.utils.z_array, pipes.utils.ldist_at_z)
    d_ours = cosmology.luminosity_distance_cm(z) / cosmology.MPC_CM
    return float((d_ref / d_ours) ** 2)


def bagpipes_mock(filters: Sequence[str], redshifts: Sequence[float], n: int, seed: int,
                  snr: float = 25.0, metallicities: Sequence[float] = (0.4, 1.0),
                  ) -> tuple[Photometry, dict[str, np.ndarray]]:
    """``n`` independent mock galaxies (module docstring): delayed SFH with age and τ drawn from
    the fine mock lattice (age below the Universe's at z), A_V uniform in [0, 1.5], log mass
    formed uniform in [9.5, 11], S/N ``snr`` in every band."""
    rng = np.random.default_rng(seed)
    fractions = {(zm, zz): _surviving_fraction(zm, zz) for zm in metallicities for zz in redshifts}
    rows, truth = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(n):
            z = float(rng.choice(redshifts))
            zmet = float(rng.choice(metallicities))
            young = np.flatnonzero(MOCK_AGES < cosmology.age_gyr(z) - 0.2)
            ia, it = int(rng.choice(young)), int(rng.integers(MOCK_TAUS.size))
            av = float(rng.uniform(0.0, 1.5))
            log_formed = float(rng.uniform(9.5, 11.0))
            per_formed = _bagpipes_photometry(filters, z, float(MOCK_AGES[ia]), float(MOCK_TAUS[it]),
                                              zmet, av, Path(tmp))
            rows.append((z, per_formed * 10**log_formed))
            truth.append((log_formed + np.log10(fractions[(zmet, z)][ia, it]), av))
    true = np.array([r[1] for r in rows])
    err = true / snr
    obs = true + rng.normal(size=true.shape) * err
    phot = Photometry(np.arange(1, n + 1, dtype=np.int64), obs, err, np.array([r[0] for r in rows]),
                      tuple(filters), np.arange(n, dtype=np.int64))
    return phot, {"logmstar": np.array([t[0] for t in truth]), "av": np.array([t[1] for t in truth])}
