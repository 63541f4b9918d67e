"""End to end: ``sedscale fit`` with a user profile declaring limit flags, zero points and E(B−V)
— limit sources fitted, bad limits and bad E(B−V) quarantined with their reasons."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sedscale.cli import main

from .test_limits_defaults import FIT_CONFIG

BANDS = ("lsst_g", "lsst_r", "lsst_i", "euclid_y", "euclid_j", "euclid_h")


@pytest.mark.slow  # a fit through the CLI on a tiny grid (fresh cache: ~20 s on a busy 2-core machine)
def test_fit_with_limits_zero_points_and_ebv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             sedscale_cache_dir: Path) -> None:
    rng = np.random.default_rng(11)
    n = 12
    cols: dict[str, object] = {"id": pa.array(np.arange(n), pa.int64()), "z": rng.uniform(0.3, 1.5, n),
                               "ebv": np.full(n, 0.03)}
    for band in BANDS:
        cols[f"f_{band}"] = rng.uniform(2.0, 20.0, n)
        cols[f"e_{band}"] = rng.uniform(0.1, 0.5, n)
    lim = np.zeros(n, bool)
    lim[[2, 5, 7]] = True
    cols["f_euclid_h"][[2, 5]] = 0.5  # type: ignore[index]
    cols["e_euclid_h"][[2, 5]] = np.nan  # type: ignore[index]
    cols["f_euclid_h"][7] = np.nan  # type: ignore[index]  # flagged, no limit value
    cols["lim_h"] = lim
    cols["ebv"][9] = -0.1  # type: ignore[index]
    catalog = tmp_path / "cat.parquet"
    pq.write_table(pa.table(cols), catalog)
    profile = tmp_path / "p.yaml"
    bands = "".join(f"  - {{column: f_{b}, error: e_{b}, filter: {b}, zero_point: 1.02}}\n" for b in BANDS[:-1])
    profile.write_text("id: id\nredshift: z\nebv: ebv\nbands:\n" + bands +
                       "  - {column: f_euclid_h, error: e_euclid_h, filter: euclid_h, limit_flag: lim_h, limit_sigma: 3}\n")
    config = tmp_path / "fit.yaml"
    config.write_text(FIT_CONFIG)
    out = tmp_path / "out.parquet"
    monkeypatch.setattr(sys, "argv", ["sedscale", "fit", str(catalog), "-o", str(out), "-p", str(profile),
                                      "--config", str(config), "--policy", "none",
                                      "--cache-dir", str(sedscale_cache_dir)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code in (0, None)
    rows = {r["source_id"]: r for r in pq.read_table(out).to_pylist()}
    assert rows[7]["status"] == "quarantined" and rows[7]["reason"].startswith("bad_limit")
    assert rows[9]["status"] == "quarantined" and rows[9]["reason"].startswith("bad_ebv")
    for i in (2, 5):
        assert rows[i]["status"] == "fitted" and rows[i]["n_bands"] == 6
        assert np.isfinite(rows[i]["logmstar"]) and np.isfinite(rows[i]["chi2_red"])
    assert sum(r["status"] == "fitted" for r in rows.values()) == n - 2
