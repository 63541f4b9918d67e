"""Mock Euclid / Roman catalogs with known truth, for tests, benchmarks and the agent's self-play.

Sources are drawn from simple but realistic distributions, their photometry computed with the
same physics as the grids (:mod:`sedscale.sed.models`), and noise added from each survey's 5σ
point-source depths. The output is the generic catalog profile (``source_id``, ``flux_<band>``,
``fluxerr_<band>`` in µJy, ``redshift``) plus ``truth_*`` columns. Everything is drawn from one
``numpy.random.Generator`` seeded by ``seed``, so the same arguments give the same table.

Distributions ("normal" class):
  z: Smail et al. n(z) ∝ z² exp(−(z/z0)^1.5) with median 0.9 (Euclid) or 1.3 (Roman), 0.05–6;
  log M*: normal(9.9, 0.6) clipped to 8.5–11.8;
  SFH: delayed-τ, τ log-uniform 0.1–10 Gyr, age uniform 15–95 % of the Universe's age (≥ 50 Myr);
  metallicity: mass–metallicity relation log Z/Z☉ = 0.3 (log M* − 10) − 0.1 − 0.1 z ± 0.15 dex;
  A_V: exponential with mean 0.2 + 0.3 (log M* − 9) (≥ 0.05), ≤ 3; birth clouds ×1 (young_factor 1);
  log U: normal(−2.8, 0.3) clipped to −4…−1; Draine & Li U_min 1, q_PAH 2.5 %, γ 0.01.
  truth_logsfr (100 Myr) and truth_logsfr10 are floored at log sSFR = −15.
Hard classes (``hard_fraction`` of the sources, in equal shares):
  agn: frac_agn 0.3–0.8, AGN A_V 0–1, host A_V ≥ 0.3;
  strong_lines: + burst of 3–20 Myr holding 5–30 % of the mass, log U −2.5…−1.5, Z 0.1–0.4 Z☉;
  very_dusty: A_V 3–6;
  lrd: "little red dots" (compact, V-shaped: blue rest UV, very red rest optical, broad Hα):
       z uniform 3–8 (JWST finds them mostly at 4–8, Kocevski et al. 2024; Euclid's Q1
       candidates lie at lower z), log M* 8–9.5, a young (20–300 Myr, log-uniform), metal-poor
       (0.1–0.4 Z☉) host lightly attenuated (A_V 0.2–0.6: the blue UV), and an AGN holding
       97–99% of the IR luminosity (frac_agn) seen through A_V,AGN 1–2.5 of SMC dust: it outshines
       the host redward of the Balmer limit (the red optical) and carries the broad Hα / Hβ of
       the AGN model. Euclid and Roman reach the rest optical only at z ≲ 4.5 (the turnover at
       3,650 Å lands beyond F213 / H above that), so only there is the "V" visible in a mock
       catalog; at higher z these sources look like faint blue galaxies, as they would.
       ``hard_classes=("lrd",)`` draws an LRD-only sample (the little-red-dots workflow's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence, TypeGuard

import numpy as np

from sedscale.bands import EUCLID_BANDS
from sedscale.sed import cosmology
from sedscale.sed.models import SourceParams, model_photometry

#: 5σ point-source depths (AB) used for the noise. Euclid Wide: VIS 26.2, NISP Y/J/H 24.3 (Euclid
#: Collaboration: Mellier et al. 2024); ground u…z: LSST-like first-years depths standing in for
#: the Euclid ground complement (UNIONS/DES/LSST). Roman HLWAS (Roman Observations Time
#: Allocation Committee 2025 definition, approx.): 26.5 in F106/F129/F158, 26.0 in F184/F213,
#: plus LSST 10-year ugrizy where the survey overlaps Rubin.
Survey = Literal["euclid", "roman"]
DEPTHS_5SIGMA: dict[Survey, dict[str, float]] = {
    "euclid": {
        "euclid_vis": 26.2, "euclid_y": 24.3, "euclid_j": 24.3, "euclid_h": 24.3,
        "lsst_u": 24.2, "lsst_g": 25.3, "lsst_r": 25.1, "lsst_i": 24.6, "lsst_z": 24.0,
    },
    "roman": {
        "roman_f106": 26.5, "roman_f129": 26.5, "roman_f158": 26.5, "roman_f184": 26.0, "roman_f213": 26.0,
        "lsst_u": 25.6, "lsst_g": 26.9, "lsst_r": 26.9, "lsst_i": 26.4, "lsst_z": 25.6, "lsst_y": 24.8,
    },
}
SPACE_BANDS: dict[Survey, tuple[str, ...]] = {"euclid": EUCLID_BANDS, "roman": ("roman_f106", "roman_f129", "roman_f158", "roman_f184", "roman_f213")}
MEDIAN_Z: dict[Survey, float] = {"euclid": 0.9, "roman": 1.3}
HARD_CLASSES = ("agn", "strong_lines", "very_dusty", "lrd")
#: Redshift range of the "little red dots" (uniform): see the module docstring.
LRD_Z = (3.0, 8.0)


def is_survey(name: str) -> TypeGuard[Survey]:
    """Whether ``name`` is a survey the mock knows (narrows a command-line string)."""
    return name in DEPTHS_5SIGMA


def survey_bands(survey: Survey, ground: bool = True) -> tuple[str, ...]:
    """The mock's bands: the survey's own, plus the ground optical bands when ``ground``."""
    depths = DEPTHS_5SIGMA[survey]
    return tuple(b for b in depths if ground or b in SPACE_BANDS[survey])


def sigma_ujy(mag5: float) -> float:
    """1σ flux error (µJy) for a 5σ depth ``mag5`` (AB): f5/5 with m_AB = 23.9 − 2.5 log f[µJy]."""
    return 10 ** (-0.4 * (mag5 - 23.9)) / 5.0


@dataclass(frozen=True)
class Truth:
    """Drawn physical parameters of the mock sources."""

    klass: np.ndarray
    params: SourceParams
    logmstar: np.ndarray


def _smail_z(rng: np.random.Generator, n: int, median: float) -> np.ndarray:
    """Draw from n(z) ∝ z² exp(−(z/z0)^1.5) (median ≈ 1.412 z0) by inverting its CDF:
    (z/z0)^1.5 follows a Gamma(2, 1) distribution."""
    z0 = median / 1.412
    z = z0 * rng.gamma(2.0, 1.0, size=n) ** (2.0 / 3.0)
    bad = (z < 0.05) | (z > 6.0)
    while np.any(bad):
        z[bad] = z0 * rng.gamma(2.0, 1.0, size=int(bad.sum())) ** (2.0 / 3.0)
        bad = (z < 0.05) | (z > 6.0)
    return z


def draw_truth(survey: Survey, n: int, rng: np.random.Generator, hard_fraction: float, cosmo: str,
               hard_classes: Sequence[str] = HARD_CLASSES) -> Truth:
    """Draw the parameters of ``n`` sources (see the module docstring for the distributions)."""
    klass = np.full(n, "normal", dtype=object)
    n_hard = int(round(hard_fraction * n))
    if n_hard:
        hard_idx = rng.choice(n, size=n_hard, replace=False)
        klass[hard_idx] = np.array(tuple(hard_classes), dtype=object)[np.arange(n_hard) % len(hard_classes)]
    z = _smail_z(rng, n, MEDIAN_Z[survey])
    logm = np.clip(rng.normal(9.9, 0.6, n), 8.5, 11.8)
    tau = 10 ** rng.uniform(-1.0, 1.0, n)
    frac_age = rng.uniform(0.15, 0.95, n)
    logz = 0.3 * (logm - 10.0) - 0.1 - 0.1 * z + rng.normal(0.0, 0.15, n)
    av = np.minimum(rng.exponential(np.maximum(0.2 + 0.3 * (logm - 9.0), 0.05)), 3.0)
    logu = np.clip(rng.normal(-2.8, 0.3, n), -4.0, -1.0)
    burst_age = np.full(n, 10.0)
    burst_fraction = np.zeros(n)
    frac_agn = np.zeros(n)
    av_agn = np.zeros(n)

    def pick(name: str) -> np.ndarray:
        return np.flatnonzero(klass == name)

    i = pick("agn")
    frac_agn[i] = rng.uniform(0.3, 0.8, i.size)
    av_agn[i] = rng.uniform(0.0, 1.0, i.size)
    av[i] = np.maximum(av[i], 0.3)
    i = pick("strong_lines")
    burst_age[i] = rng.uniform(3.0, 20.0, i.size)
    burst_fraction[i] = rng.uniform(0.05, 0.3, i.size)
    logu[i] = rng.uniform(-2.5, -1.5, i.size)
    logz[i] = np.log10(rng.uniform(0.1, 0.4, i.size))
    i = pick("very_dusty")
    av[i] = rng.uniform(3.0, 6.0, i.size)
    i = pick("lrd")
    z[i] = rng.uniform(LRD_Z[0], LRD_Z[1], i.size)
    logm[i] = rng.uniform(8.0, 9.5, i.size)
    av[i] = rng.uniform(0.2, 0.6, i.size)  # the blue rest-UV: a lightly attenuated young host
    logz[i] = np.log10(rng.uniform(0.1, 0.4, i.size))
    frac_agn[i] = rng.uniform(0.97, 0.99, i.size)  # the rest optical: a reddened AGN outshines the host
    av_agn[i] = rng.uniform(1.0, 2.5, i.size)

    t_univ = cosmology.age_gyr(z, cosmo)
    age = np.maximum(frac_age * t_univ, 0.05)
    age[i] = np.minimum(10 ** rng.uniform(np.log10(0.02), np.log10(0.3), i.size), 0.95 * t_univ[i])
    params = SourceParams(
        z=z, age=age, tau=tau, metallicity=np.clip(10**logz, 0.02, 2.5), av=av, logu=logu,
        burst_age=burst_age, burst_fraction=burst_fraction, frac_agn=frac_agn, av_agn=av_agn,
    )
    return Truth(klass=klass, params=params, logmstar=logm)


def make_mock(
    survey: Survey,
    n: int,
    seed: int,
    hard_fraction: float = 0.0,
    *,
    ground: bool = True,
    depth_offset: float = 0.0,
    cosmology_name: str = "Planck18",
    progress: Callable[[int], None] | None = None,
    hard_classes: Sequence[str] = HARD_CLASSES,
):
    """A mock catalog as a ``pyarrow.Table`` in the generic profile with ``truth_*`` columns.

    ``depth_offset`` (mag) deepens (> 0) or shallows every depth, e.g. 3 for S/N ≥ 20 samples;
    ``ground=False`` keeps only the space bands; ``hard_classes`` picks which hard classes share the
    hard sources (e.g. ``("lrd",)`` for a little-red-dot sample). Deterministic for given arguments.
    """
    import pyarrow as pa

    if survey not in DEPTHS_5SIGMA:
        raise ValueError(f"survey must be one of {sorted(DEPTHS_5SIGMA)}, not {survey!r}")
    if not 0.0 <= hard_fraction <= 1.0:
        raise ValueError(f"hard_fraction must lie in [0, 1], not {hard_fraction}")
    unknown = sorted(set(hard_classes) - set(HARD_CLASSES))
    if unknown or not hard_classes:
        raise ValueError(f"hard_classes must be a non-empty subset of {HARD_CLASSES}, not {tuple(hard_classes)}")
    rng = np.random.default_rng(seed)
    truth = draw_truth(survey, n, rng, hard_fraction, cosmology_name, tuple(hard_classes))
    bands = survey_bands(survey, ground)
    per_msun, z, extras = model_photometry(truth.params, bands, cosmology_name=cosmology_name, progress=progress)
    formed = 10**truth.logmstar / extras["mstar"]
    flux_true = per_msun * formed[:, None]
    sigma = np.array([sigma_ujy(DEPTHS_5SIGMA[survey][b] + depth_offset) for b in bands])
    noise = rng.normal(0.0, 1.0, flux_true.shape) * sigma[None, :]

    columns: dict[str, pa.Array] = {"source_id": pa.array(np.arange(1, n + 1, dtype=np.int64))}
    for j, b in enumerate(bands):
        columns[f"flux_{b}"] = pa.array(flux_true[:, j] + noise[:, j])
        columns[f"fluxerr_{b}"] = pa.array(np.full(n, sigma[j]))
    p = truth.params
    columns["redshift"] = pa.array(z)
    # SFRs are floored at sSFR = 1e-15 /yr (an exponential with τ ≪ age underflows to 0)
    floor = 1e-15 * 10**truth.logmstar
    sfr100 = np.maximum(extras["sfr100"] * formed, floor)
    sfr10 = np.maximum(extras["sfr10"] * formed, floor)
    with np.errstate(divide="ignore"):
        truth_cols = {
            "truth_z": z,
            "truth_logmstar": truth.logmstar,
            "truth_logsfr": np.log10(sfr100),
            "truth_logsfr10": np.log10(sfr10),
            "truth_av": p.av,
            "truth_metallicity": p.metallicity,
            "truth_age": p.age,
            "truth_tau": p.tau,
            "truth_logu": p.logu,
            "truth_burst_age": p.burst_age,
            "truth_burst_fraction": p.burst_fraction,
            "truth_frac_agn": p.frac_agn,
            "truth_av_agn": p.av_agn,
            "truth_logldust": np.log10(np.maximum(extras["ldust"] * formed, 1e-30)),
        }
    for k, v in truth_cols.items():
        columns[k] = pa.array(np.asarray(v, dtype=np.float64))
    for j, b in enumerate(bands):
        columns[f"truth_flux_{b}"] = pa.array(flux_true[:, j])
    columns["truth_class"] = pa.array(truth.klass.astype(str))
    meta = {
        b"sedscale.mock": (
            f'{{"survey": "{survey}", "seed": {seed}, "n": {n}, "hard_fraction": {hard_fraction}, '
            f'"ground": {str(ground).lower()}, "depth_offset": {depth_offset}, "cosmology": "{cosmology_name}"}}'
        ).encode()
    }
    return pa.table(columns).replace_schema_metadata(meta)
