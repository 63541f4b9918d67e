"""The fused kernel runs as loaded from numba's cache in every process, the first one on a cold
cache included — so a campaign's results do not depend on which worker compiled the kernel.

(Measured before this existed: a process that compiled the kernel itself and one that loaded
it from the cache disagreed by ~1e-7 in log M* on half of the sources.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # numba is a hard dependency (pyproject.toml): this never skips

SCRIPT = r"""
import json, sys
import numpy as np
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.mock import make_mock
from sedscale.catalog.photometry import Photometry
from sedscale.sed.kernel_cache import _entry_points, marker_path

table = make_mock("euclid", 200, seed=4)
bands = ("euclid_vis", "euclid_y", "euclid_j", "euclid_h")
flux = np.stack([table.column(f"flux_{b}").to_numpy() for b in bands], axis=1)
error = np.stack([table.column(f"fluxerr_{b}").to_numpy() for b in bands], axis=1)
n = flux.shape[0]
phot = Photometry(source_id=np.arange(n), flux=flux, error=error,
                  redshift=table.column("redshift").to_numpy().astype(float), filters=bands,
                  row_index=np.arange(n))
cfg = FitConfig()
known = fit_photometry(phot, cfg)
photoz = fit_photometry(phot.take(np.arange(20)), cfg, photoz=True)
print(json.dumps({
    "misses": {f.__name__: sum(f.stats.cache_misses.values()) for f in _entry_points()},
    "hits": {f.__name__: sum(f.stats.cache_hits.values()) for f in _entry_points()},
    "marker": marker_path().exists(),
    "logmstar": np.asarray(known.estimates["logmstar"][0]).tolist(),
    "z_best": np.asarray(photoz.z_best).tolist(),
}))
"""


def _run(cache: Path) -> dict:
    env = os.environ | {"NUMBA_CACHE_DIR": str(cache)}
    env.pop("SEDSCALE_KERNEL_CACHE_CHILD", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(900)
def test_the_first_process_on_a_cold_cache_loads_the_kernel_like_every_later_one(tmp_path: Path) -> None:
    cold = _run(tmp_path / "numba")  # a cold cache: the kernel is compiled in a child process
    warm = _run(tmp_path / "numba")
    for run in (cold, warm):
        assert run["marker"]
        assert run["misses"] == {"pilot_block": 0, "scan_block": 0}, run["misses"]  # nothing compiled here
        assert all(v > 0 for v in run["hits"].values()), run["hits"]
    assert cold["logmstar"] == warm["logmstar"]  # bit for bit
    assert cold["z_best"] == warm["z_best"]
