"""Independent hard mock galaxies: dusty, strong-line and AGN sources made by bagpipes.

The agent-quality benchmark (issue 17) needs sources a default grid fits badly, made by code other
than sedscale's own physics, so that an agent action helps only if it recovers the truth (not
merely χ²). Each source is one ``bagpipes.model_galaxy`` (its SSPs, Cloudy nebular grids,
Calzetti dust and AGN model) at a known redshift, rescaled to sedscale's cosmology as in
:func:`sedscale.sed.calibration.bagpipes_mock`. Classes, in equal shares:

* ``dusty`` — delayed-τ host, Calzetti A_V uniform in [1, 5] mag (half of them above 3, the
  default grid's ceiling), birth clouds as dusty as the rest (η = 1);
* ``lines`` — delayed-τ host plus a young burst (constant SFR over the last 3–20 Myr holding
  5–30 % of the mass formed), metal-poor (0.2 Z☉), nebular log U uniform in [−2, −1], A_V 0–0.5:
  strong [OIII], Hα and Hβ in the bands;
* ``agn`` — delayed-τ host with little dust (A_V 0–0.3) plus bagpipes' AGN (a broken power law
  normalised by ``f5100A`` and broad Hα/Hβ with EW(Hα) 200–500 Å, σ 3000 km/s), holding 30–80 %
  of the rest-frame λL_λ at 5100 Å.

All hosts: age and τ on the fine lattice of :mod:`sedscale.sed.calibration` (off any fitting
grid), metallicity 0.4 or 1 Z☉ (lines: 0.2), nebular emission with log U −3 (lines: as above),
log mass formed uniform in [9.5, 11], z uniform in [0.3, 1.5] (the 9 Euclid+LSST bands then span
rest UV to near-IR), Gaussian noise at S/N 20–25 per band (uniform per source).

Truth columns: ``truth_logmstar`` (surviving mass: mass formed times sedscale's surviving fraction
of each component, the quantity ``logmstar`` estimates), ``truth_logsfr`` (mean SFR over 100 Myr,
from the SFH integrals), ``truth_av`` (host Calzetti A_V), ``truth_class``.

Command line: ``python -m sedscale.sed.hard_mocks OUT.parquet --n 400 --seed 1``.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sedscale.bands import EUCLID_BANDS
from sedscale.fsutil import atomic_write
from sedscale.sed import cosmology
from sedscale.sed.calibration import (MOCK_AGES, MOCK_TAUS, _surviving_fraction,
                                      bagpipes_distance_rescale, bagpipes_filter_files)
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import build_grid

#: The bands of sedscale's Euclid mocks (:data:`sedscale.sed.mock.DEPTHS_5SIGMA` "euclid").
HARD_MOCK_BANDS: tuple[str, ...] = ("lsst_u", "lsst_g", "lsst_r", "lsst_i", "lsst_z") + EUCLID_BANDS
CLASSES = ("dusty", "lines", "agn")
Z_RANGE = (0.3, 1.5)
SNR_RANGE = (20.0, 25.0)
LOG_FORMED_RANGE = (9.5, 11.0)
BURST_AGES_GYR = (0.003, 0.005, 0.008, 0.012, 0.02)  # the lines class's burst durations
REFERENCE_AA = 5100.0  # where the AGN's share of λL_λ is set
#: The truth's surviving fractions do not depend on redshift; one node computes them.
_FRACTION_Z = 0.3


@dataclass(frozen=True)
class HardSource:
    """One drawn source: its bagpipes components and its truth."""

    klass: str
    z: float
    components: dict[str, Any]
    agn_fraction: float  # AGN share of λL_λ(5100 Å); 0 without AGN
    truth_logmstar: float
    truth_logsfr: float
    truth_av: float


def _delayed_mass_share_100myr(age: float, tau: float) -> float:
    """Share of a delayed-τ SFH's mass formed in its last 100 Myr (∫ t e^{−t/τ} dt analytic)."""
    def cumulative(t: float) -> float:
        return tau**2 * (1.0 - (1.0 + t / tau) * np.exp(-t / tau))

    return (cumulative(age) - cumulative(max(age - 0.1, 0.0))) / cumulative(age)


@lru_cache(maxsize=8)
def _burst_surviving(metallicity: float) -> np.ndarray:
    """sedscale's surviving mass per unit formed of a constant-SFR burst, per :data:`BURST_AGES_GYR`."""
    cfg = FitConfig.from_dict({
        "sfh": {"family": "constant", "age": list(BURST_AGES_GYR)},
        "stellar": {"metallicity": [metallicity]},
        "dust_attenuation": {"enabled": False}, "nebular": {"enabled": False},
        "dust_emission": {"enabled": False},
    })
    grid = build_grid(cfg, ("euclid_h",), [_FRACTION_Z], persist=False)
    order = np.searchsorted(BURST_AGES_GYR, grid.intensive["age"])
    out = np.empty(len(BURST_AGES_GYR))
    out[order] = grid.extensive["mstar"]
    return out


@lru_cache(maxsize=8)
def _host_surviving(metallicity: float) -> np.ndarray:
    return _surviving_fraction(metallicity, _FRACTION_Z)


def _draw_host(rng: np.random.Generator, z: float, metallicity: float) -> tuple[float, float, float, float]:
    """(age, τ, log mass formed, surviving fraction) of a delayed-τ host on the mock lattice."""
    young = np.flatnonzero(MOCK_AGES < cosmology.age_gyr(z) - 0.2)
    ia, it = int(rng.choice(young)), int(rng.integers(MOCK_TAUS.size))
    log_formed = float(rng.uniform(*LOG_FORMED_RANGE))
    return float(MOCK_AGES[ia]), float(MOCK_TAUS[it]), log_formed, float(_host_surviving(metallicity)[ia, it])


def draw_source(klass: str, rng: np.random.Generator) -> HardSource:
    """One source of class ``klass`` (module docstring), its parameters drawn from ``rng``."""
    z = round(float(rng.uniform(*Z_RANGE)), 4)
    zmet = 0.2 if klass == "lines" else float(rng.choice([0.4, 1.0]))
    age, tau, log_formed, surv = _draw_host(rng, z, zmet)
    av = float(rng.uniform(1.0, 5.0) if klass == "dusty" else rng.uniform(0.0, 0.5 if klass == "lines" else 0.3))
    logu = float(rng.uniform(-2.0, -1.0)) if klass == "lines" else -3.0
    comp: dict[str, Any] = {
        "redshift": z, "t_bc": 0.01,
        "delayed": {"age": age, "tau": tau, "massformed": log_formed, "metallicity": zmet},
        "dust": {"type": "Calzetti", "Av": av, "eta": 1.0, "qpah": 2.5, "umin": 1.0, "gamma": 0.01},
        "nebular": {"logU": logu},
    }
    mass = 10**log_formed * surv
    sfr = 10**log_formed * _delayed_mass_share_100myr(age, tau) / 1e8
    agn_fraction = 0.0
    if klass == "lines":
        share = float(rng.uniform(0.05, 0.3))
        ib = int(rng.integers(len(BURST_AGES_GYR)))
        burst_formed = 10**log_formed * share / (1.0 - share)
        comp["constant"] = {"age_max": BURST_AGES_GYR[ib], "age_min": 0.0,
                            "massformed": float(np.log10(burst_formed)), "metallicity": zmet}
        mass += burst_formed * float(_burst_surviving(zmet)[ib])
        sfr += burst_formed / 1e8
    elif klass == "agn":
        agn_fraction = float(rng.uniform(0.3, 0.8))
        comp["agn"] = {"alphalam": float(rng.uniform(-2.0, -1.0)), "betalam": float(rng.uniform(-1.0, 0.0)),
                       "f5100A": 0.0, "sigma": 3000.0, "hanorm": float(rng.uniform(200.0, 500.0))}
    return HardSource(klass, z, comp, agn_fraction, float(np.log10(mass)), float(np.log10(sfr)), av)


def _photometry(src: HardSource, files: list[str]) -> np.ndarray:
    """µJy in each band of one source, in sedscale's cosmology. An AGN is scaled after a first,
    AGN-free spectrum so that it holds ``agn_fraction`` of λL_λ at 5100 Å (its ``hanorm``,
    drawn as an equivalent width, becomes a flux on that continuum)."""
    import bagpipes as pipes  # type: ignore[import-untyped]  # heavy: only for these mocks

    comp = {k: (dict(v) if isinstance(v, dict) else v) for k, v in src.components.items()}
    ew_ha = comp.get("agn", {}).get("hanorm", 0.0)
    if "agn" in comp:
        comp["agn"]["hanorm"] = 0.0
    model = pipes.model_galaxy(comp, filt_list=files, phot_units="mujy")
    if "agn" in comp:
        galaxy = float(np.interp(REFERENCE_AA, model.wavelengths, model.spectrum_full))
        f = src.agn_fraction
        f5100 = (1.0 + src.z) * galaxy * f / (1.0 - f)  # the model adds agn/(1+z) to spectrum_full
        beta = comp["agn"]["betalam"]
        comp["agn"]["f5100A"] = f5100
        comp["agn"]["hanorm"] = ew_ha * f5100 * (6562.8 / REFERENCE_AA) ** beta
        model.update(comp)
    return np.asarray(model.photometry, np.float64) * bagpipes_distance_rescale(src.z)


def make_hard_mocks(n: int, seed: int, filters: Sequence[str] = HARD_MOCK_BANDS) -> dict[str, np.ndarray]:
    """``n`` sources (classes in turn: dusty, lines, agn, …) as generic-profile columns plus truth."""
    rng = np.random.default_rng(seed)
    sources = [draw_source(CLASSES[i % len(CLASSES)], rng) for i in range(n)]
    flux = np.empty((n, len(filters)))
    with tempfile.TemporaryDirectory() as tmp:
        files = bagpipes_filter_files(filters, Path(tmp))
        for i, src in enumerate(sources):
            flux[i] = _photometry(src, files)
    snr = rng.uniform(*SNR_RANGE, size=(n, 1))
    err = np.abs(flux) / snr
    obs = flux + rng.normal(size=flux.shape) * err
    cols: dict[str, np.ndarray] = {"source_id": np.arange(1, n + 1, dtype=np.int64),
                                   "redshift": np.array([s.z for s in sources])}
    for j, band in enumerate(filters):
        cols[f"flux_{band}"] = obs[:, j]
        cols[f"fluxerr_{band}"] = err[:, j]
    cols["truth_logmstar"] = np.array([s.truth_logmstar for s in sources])
    cols["truth_logsfr"] = np.array([s.truth_logsfr for s in sources])
    cols["truth_av"] = np.array([s.truth_av for s in sources])
    cols["truth_class"] = np.array([s.klass for s in sources], dtype=object)
    cols["truth_agn_fraction_5100"] = np.array([s.agn_fraction for s in sources])
    return cols


def write_parquet(cols: dict[str, np.ndarray], path: Path) -> None:
    """The columns as one Parquet file, written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: pa.array(v.tolist() if v.dtype == object else v) for k, v in cols.items()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write(path, buf.getvalue())


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sedscale.sed.hard_mocks OUT.parquet --n 400 --seed 1``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    write_parquet(make_hard_mocks(args.n, args.seed), args.out)
    print(f"{args.out}: {args.n} sources")


if __name__ == "__main__":
    main()
