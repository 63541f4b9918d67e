"""Grid-build throughput: ``python -m sedscale.sed.gridbench`` (run with OMP_NUM_THREADS=1).

Reports models per CPU-second for (i) one redshift node and (ii) many nodes (a photo-z grid), for
configurations of ~10^3, ~10^4 and ~10^5 models, after the one-off SSP/nebular loading (timed
separately). "cold" includes the per-configuration preparation, "warm" reuses it (as a
worker does when it meets new redshift nodes for a configuration it has already built). CPU time (process_time) is reported beside wall time because the development
machines are shared.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from sedscale.bands import EUCLID_BANDS, LSST_BANDS
from sedscale.sed import builder
from sedscale.sed.builder import build_arrays
from sedscale.sed.config import FitConfig

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "1e4": {"sfh": {"tau": [0.05, 0.1, 0.3, 0.6, 1.0, 2.0, 3.0, 5.0, 10.0]},
            "stellar": {"metallicity": [0.02, 0.2, 0.4, 1.0, 2.5]},
            "nebular": {"logu": [-3.5, -2.5]}},
    "1e5": {"sfh": {"family": "delayed_burst", "tau": [0.05, 0.1, 0.3, 0.6, 1.0, 2.0, 3.0, 5.0, 10.0],
                    "burst_fraction": [0.0, 0.05, 0.2]},
            "stellar": {"metallicity": [0.02, 0.2, 0.4, 1.0, 2.5]},
            "nebular": {"logu": [-3.5, -2.5, -1.5]},
            "dust_attenuation": {"young_factor": [1.0, 2.0]}},
}


def _time(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def interpolation_error(step: float, n_cells: int = 150, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Max and 99.9th-percentile relative error of linear-in-log10(1+z) interpolation between
    known-z nodes spaced ``step``, per band, over the default config's models at three points
    inside each of ``n_cells`` random lattice cells (0.05 < z < 6). Bands where a model's flux
    is < 1 % of its brightest band (e.g. IGM-blanketed) are not counted."""
    from sedscale.bands import BUILTIN_BANDS
    from sedscale.sed.grid import build_grid

    cfg = FitConfig.default()
    bands = tuple(BUILTIN_BANDS)
    rng = np.random.default_rng(seed)
    k = np.unique(rng.integers(int(np.log10(1.05) / step), int(np.log10(7.0) / step), n_cells))
    nodes = 10 ** (np.union1d(k, k + 1) * step) - 1
    zq = (10 ** ((k[:, None] + np.array([0.25, 0.5, 0.75])[None, :]) * step) - 1).ravel()
    grid = build_grid(cfg, bands, nodes)
    exact = build_grid(cfg, bands, zq)
    rel = np.abs(grid.at_redshift(zq) / exact.flux - 1)
    keep = exact.valid[:, :, None] & (exact.flux > 0.01 * exact.flux.max(axis=2, keepdims=True))
    return {b: (float(rel[:, :, j][keep[:, :, j]].max()), float(np.quantile(rel[:, :, j][keep[:, :, j]], 0.999)))
            for j, b in enumerate(bands)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=50, help="redshift nodes in the multi-node run")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--interp", type=float, nargs="*", metavar="STEP",
                        help="instead, measure the redshift-interpolation error for these node steps")
    args = parser.parse_args()
    if args.interp:
        for step in args.interp:
            errs = interpolation_error(step)
            print(f"node step {step} in log10(1+z): band max / 99.9th percentile (%)")
            for band, (mx, p999) in errs.items():
                print(f"  {band:>11}: {100 * mx:5.2f} / {100 * p999:5.2f}")
        return
    bands = EUCLID_BANDS + LSST_BANDS
    wall, cpu = _time(lambda: build_arrays(FitConfig.default(), bands, [1.0]))
    print(f"first call (loads SSP + nebular grids): wall {wall:.2f} s, cpu {cpu:.2f} s")
    zs = np.linspace(0.1, 4.0, args.nodes)
    for name in args.configs:
        cfg = FitConfig.from_dict(CONFIGS[name])
        m = cfg.n_models
        runs = (("1 node, cold", [1.0], True), ("1 node, warm", [1.1], False), (f"{args.nodes} nodes, cold", zs, True))
        for label, z, cold in runs:
            if cold:  # forget the per-config preparation (composite spectra, SFHs, energy balance)
                builder._PREPARED.clear()
            wall, cpu = _time(lambda: build_arrays(cfg, bands, z))
            n = m * len(z)
            print(f"{name:>8} ({m:>6} models) {label:>16}: {n / cpu:>10,.0f} model-nodes per cpu-s "
                  f"({n / wall:>10,.0f} per wall-s), {1e3 * cpu / len(z):.1f} ms cpu per node")


if __name__ == "__main__":
    main()
