"""A process that compiles the fused kernel and one that loads it from the cache give the same
bits (issue 13): numba's fast-math helpers are inlined into the entry point, so there is one
machine code per entry point whichever way it got into the process.

(Measured before: a process that compiled and one that loaded differed by up to ~5e-7 in
about a third of the estimates of a 300-row fit.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # each child compiles or loads the real kernel on a real grid

SCRIPT = r"""
import json, sys
import numpy as np
from sedscale.catalog.photometry import Photometry
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.kernel_numba import kernel_provenance
from sedscale.sed.mock import make_mock

table = make_mock("euclid", 300, seed=4)
bands = ("euclid_vis", "euclid_y", "euclid_j", "euclid_h")
flux = np.stack([table.column(f"flux_{b}").to_numpy() for b in bands], axis=1)
error = np.stack([table.column(f"fluxerr_{b}").to_numpy() for b in bands], axis=1)
flux[:5] *= 300.0  # high S/N rows take the kernel's float64 path
n = flux.shape[0]
phot = Photometry(source_id=np.arange(n), flux=flux, error=error,
                  redshift=table.column("redshift").to_numpy().astype(float), filters=bands,
                  row_index=np.arange(n))
out = {}
for tag, res in (("known", fit_photometry(phot, FitConfig())),
                 ("photoz", fit_photometry(phot.take(np.arange(40)), FitConfig(), photoz=True))):
    for name, (mean, std) in res.estimates.items():
        out[f"{tag}_{name}_mean"], out[f"{tag}_{name}_std"] = np.asarray(mean), np.asarray(std)
    out[f"{tag}_chi2"], out[f"{tag}_best"] = np.asarray(res.chi2_best), np.asarray(res.best_index)
np.savez(sys.argv[1], **out)
print(json.dumps(kernel_provenance()))
"""


def _fit_in_child(cache: Path, out: Path) -> dict:
    env = os.environ | {"SEDSCALE_CACHE_DIR": str(cache)}
    env.pop("NUMBA_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_same_bits(a: Path, b: Path) -> None:
    left, right = np.load(a), np.load(b)
    assert sorted(left.files) == sorted(right.files)
    differing = [k for k in left.files if left[k].tobytes() != right[k].tobytes()]
    assert not differing, differing


@pytest.mark.timeout(2400)
def test_compiling_and_loading_processes_give_the_same_bits(tmp_path: Path) -> None:
    compiled = _fit_in_child(tmp_path / "cache-a", tmp_path / "compiled.npz")
    loaded = _fit_in_child(tmp_path / "cache-a", tmp_path / "loaded.npz")
    again = _fit_in_child(tmp_path / "cache-b", tmp_path / "compiled-again.npz")
    for run in (compiled, again):
        for entry in run["entry_points"].values():
            assert entry["compiled"] > 0 and entry["loaded"] == 0, run
    for entry in loaded["entry_points"].values():
        assert entry["loaded"] > 0 and entry["compiled"] == 0, loaded  # numba's own statistics
    assert compiled["cache_dir"] == loaded["cache_dir"] != again["cache_dir"]
    assert Path(compiled["cache_dir"]).parent == tmp_path / "cache-a" / "numba"
    _assert_same_bits(tmp_path / "compiled.npz", tmp_path / "loaded.npz")
    _assert_same_bits(tmp_path / "compiled.npz", tmp_path / "compiled-again.npz")
