"""Photo-z quality (issue 15): HDF-N (real, 110 spec-z) and a ``sedscale mock`` catalog at survey
depth, step by step, on the same photometry.

    python benchmarks/bench_photoz.py                    # every step, HDF-N + a 400-source mock
    python benchmarks/bench_photoz.py --mock-n 1000      # a larger mock (slower)
    python benchmarks/bench_photoz.py --no-cli           # skip the `sedscale fit` run

Measured as the issue defines it: every source fitted in photo-z mode with its redshift ignored
(HDF-N: a profile mapping only the id and the 7 bands; the mock: the generic profile with
``--ignore-redshift``), scored over 0 < z_true ≤ 4: Δ = (z_phot − z)/(1 + z),
σ_NMAD = 1.48·median(|Δ − median Δ|), outliers |Δ| > 0.15. ``z_phot`` is the median of P(z).

Each step is one change to the photo-z error model, prior or grid (:data:`STEPS`), chosen a
priori from standard practice (EAZY, BPZ) — the table reports what each one gives; it is not a
search over the 110 spec-z. The zero-point row self-calibrates multiplicative offsets from the
photo-z fits of the 953 HDF-N sources *without* a spec-z (never the scored ones) and applies them
to the scored sources. The mock columns say whether a change that moves HDF-N also holds on
photometry the grid describes exactly (issue 15: within 20 % of the first row's mock numbers).

The row "shipped defaults" is what ``sedscale fit CATALOG --photoz --policy none`` does; the CLI
line at the end runs exactly that command on HDF-N and repeats that row (``sedscale.sed.api``
applies ``PhotozOptions.error_floor``, photo-z mode's own 2 % floor).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml

from sedscale.catalog.photometry import Photometry
from sedscale.commands.fit import default_cache_dir
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.photoz import PhotozOptions

HDFN = Path(__file__).resolve().parents[1] / "examples" / "hdfn"
PROFILE = HDFN / "hdfn_photoz_profile.yaml"


@dataclass(frozen=True)
class Step:
    """One configuration of the photo-z fit: FitConfig keys and PhotozOptions keys."""

    label: str
    config: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    zeropoints: bool = False


#: The issue-15 starting point: the physics fit's 5 % floor (its default then; stated, since the
#: default is 7 % now), Σ ln σ² kept, flat prior.
START = {"log_norm": True, "prior": "flat", "error_floor": None}
OLD_FLOOR = {"error_floor": 0.05}
#: Photo-z mode's own 2 % floor. Given as the config's floor too, so the row measures it whether
#: or not ``sedscale.sed.api`` already applies ``PhotozOptions.error_floor``.
FLOOR = {"error_floor": 0.02}

#: What was tried, in order: the adopted steps (each on top of the previous one), then the
#: changes tried on top of the shipped defaults and not adopted.
STEPS = (
    Step("issue-15 start (floor 0.05, TEF, Σ ln σ², flat prior)", config=OLD_FLOOR, options=START),
    Step("− Σ ln σ² term (EAZY's χ²)", config=OLD_FLOOR, options={"prior": "flat", "error_floor": None}),
    Step("+ apparent-magnitude prior (reddest band)", config=OLD_FLOOR, options={"error_floor": None}),
    Step("+ photo-z floor 0.02 = shipped defaults", config=FLOOR),
    Step("tried: + 4 metallicities (0.2, 0.4, 1, 2.5 Z☉)", config={**FLOOR, "stellar": {"metallicity": [0.2, 0.4, 1.0, 2.5]}}),
    Step("tried: + zero points from photo-z (953 non-scored sources)", config=FLOOR, zeropoints=True),
    Step("tried: TEF off", config=FLOOR, options={"tef": False}),
    Step("tried: Σ ln σ² kept", config=FLOOR, options={"log_norm": True}),
)


def score(z_phot: np.ndarray, z_true: np.ndarray) -> tuple[float, float, int]:
    """σ_NMAD, outlier fraction and N over 0 < z_true ≤ 4 (the issue's definition)."""
    sel = (z_true > 0) & (z_true <= 4) & np.isfinite(z_phot)
    d = (z_phot[sel] - z_true[sel]) / (1 + z_true[sel])
    nmad = 1.48 * float(np.median(np.abs(d - np.median(d))))
    return nmad, float(np.mean(np.abs(d) > 0.15)), int(sel.sum())


def hdfn_photometry(name: str) -> tuple[Photometry, np.ndarray]:
    """HDF-N rows through the photo-z profile's columns (error ≤ 0 or NaN → not observed)."""
    prof = yaml.safe_load(PROFILE.read_text())
    t = pq.read_table(HDFN / name)
    flux = np.column_stack([t.column(b["column"]).to_numpy() for b in prof["bands"]]).astype(float)
    err = np.column_stack([t.column(b["error"]).to_numpy() for b in prof["bands"]]).astype(float)
    bad = ~(np.isfinite(err) & (err > 0))
    flux[bad], err[bad] = np.nan, np.nan
    filters = tuple(str((HDFN / b["filter"]).resolve()) for b in prof["bands"])
    n = t.num_rows
    ids = t.column(prof["id"]).to_numpy().astype(np.int64)
    return Photometry(ids, flux, err, np.full(n, np.nan), filters, np.arange(n)), t.column("z_spec").to_numpy()


def mock_photometry(n: int, seed: int, workdir: Path) -> tuple[Photometry, np.ndarray]:
    """A Euclid (+ ground) mock at the survey's depths, its redshifts kept aside as the truth."""
    path = workdir / "mock.parquet"
    subprocess.run([sys.executable, "-m", "sedscale", "mock", str(path), "--survey", "euclid",
                    "--n", str(n), "--seed", str(seed)], check=True, capture_output=True)
    t = pq.read_table(path)
    bands = tuple(c.removeprefix("flux_") for c in t.column_names if c.startswith("flux_"))
    flux = np.column_stack([t.column(f"flux_{b}").to_numpy() for b in bands]).astype(float)
    err = np.column_stack([t.column(f"fluxerr_{b}").to_numpy() for b in bands]).astype(float)
    return (Photometry(t.column("source_id").to_numpy().astype(np.int64), flux, err, np.full(t.num_rows, np.nan),
                       bands, np.arange(t.num_rows)), t.column("redshift").to_numpy())


def with_zeropoints(phot: Photometry, zp: np.ndarray) -> Photometry:
    """``phot`` with fluxes and errors divided by the multiplicative zero points ``zp`` (B,)."""
    return Photometry(phot.source_id, phot.flux / zp, phot.error / zp, phot.redshift, phot.filters, phot.row_index)


def self_calibrate(phot: Photometry, config: FitConfig, options: PhotozOptions, cache: Path,
                   rounds: int = 3) -> np.ndarray:
    """Zero points from photo-z fits alone: per band, the median observed / best-model flux of the
    sources detected at S/N > 5 there, renormalised to a geometric mean of 1, over ``rounds``."""
    zp = np.ones(phot.flux.shape[1])
    for _ in range(rounds):
        cur = with_zeropoints(phot, zp)
        res = fit_photometry(cur, config, photoz=True, cache_dir=cache, photoz_options=options)
        ratio = cur.flux / res.best_flux
        use = (cur.flux > 5 * cur.error) & np.isfinite(ratio) & np.isfinite(res.chi2_red)[:, None]
        step = np.array([np.median(ratio[use[:, b], b]) if use[:, b].any() else 1.0 for b in range(ratio.shape[1])])
        zp = zp * step / np.exp(np.mean(np.log(step)))
    return zp


def run_step(step: Step, phot: Photometry, z_true: np.ndarray, cache: Path,
             calibration: Photometry | None) -> tuple[float, float, int]:
    """One step's scores on one catalog (zero points from ``calibration`` where the step asks)."""
    config = FitConfig.from_dict(step.config)
    options = PhotozOptions(**step.options)
    if step.zeropoints:
        if calibration is None:
            return float("nan"), float("nan"), 0
        phot = with_zeropoints(phot, self_calibrate(calibration, config, options, cache))
    res = fit_photometry(phot, config, photoz=True, cache_dir=cache, photoz_options=options)
    assert res.z_phot is not None
    return score(res.z_phot, z_true)


def cli_hdfn(cache: Path, workdir: Path) -> tuple[float, float, int]:
    """The issue's command, as a user runs it: ``sedscale fit CATALOG --photoz --policy none``."""
    out = workdir / "hdfn_photoz.parquet"
    subprocess.run([sys.executable, "-m", "sedscale", "fit", str(HDFN / "hdfn_fs99_zspec.parquet"), "--profile",
                    str(PROFILE), "--photoz", "--policy", "none", "-o", str(out), "--cache-dir", str(cache)],
                   check=True, capture_output=True)
    res = pq.read_table(out)
    z_spec = dict(zip(*(pq.read_table(HDFN / "hdfn_fs99_zspec.parquet").column(c).to_pylist() for c in ("id", "z_spec"))))
    z_true = np.array([z_spec[i] for i in res.column("source_id").to_pylist()], dtype=float)
    return score(res.column("z_phot").to_numpy(zero_copy_only=False).astype(float), z_true)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mock-n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    ap.add_argument("--no-cli", action="store_true", help="skip the `sedscale fit` run")
    args = ap.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        hdfn, z_spec = hdfn_photometry("hdfn_fs99_zspec.parquet")
        everyone, _ = hdfn_photometry("hdfn_fs99.parquet")
        calibration = everyone.take(np.flatnonzero(~np.isin(everyone.source_id, hdfn.source_id)))
        mock, z_mock = mock_photometry(args.mock_n, args.seed, work)
        print("| step | HDF-N σ_NMAD | HDF-N outliers | mock σ_NMAD | mock outliers | mock / first row | s |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        first: tuple[float, float] | None = None
        for step in STEPS:
            t0 = time.perf_counter()
            h = run_step(step, hdfn, z_spec, args.cache_dir, calibration)
            m = run_step(step, mock, z_mock, args.cache_dir, None)
            first = first or (m[0], m[1])
            ratio = f"{m[0] / first[0]:.2f} / {m[1] / max(first[1], 1e-9):.2f}" if m[2] else "—"
            print(f"| {step.label} | {h[0]:.4f} | {100 * h[1]:.1f} % (N={h[2]}) | {m[0]:.4f} | "
                  f"{100 * m[1]:.1f} % (N={m[2]}) | {ratio} | {time.perf_counter() - t0:.0f} |", flush=True)
        if not args.no_cli:
            c = cli_hdfn(args.cache_dir, work)
            print(f"\n`sedscale fit hdfn_fs99_zspec.parquet --profile hdfn_photoz_profile.yaml --photoz "
                  f"--policy none`: σ_NMAD {c[0]:.4f}, outliers {100 * c[1]:.1f} % (N={c[2]})")


if __name__ == "__main__":
    main()
