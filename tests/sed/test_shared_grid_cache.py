"""A grid cache shared by processes: two real processes building one grid at once both finish with
the same grid and leave one whole, verified file (no temporaries); a fit gives the same bits whether
its grid was built or read from the cache; cached builds and loads are counted apart (issue 17)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sedscale.catalog.photometry import Photometry
from sedscale.sed import grid as grid_mod
from sedscale.sed.api import fit_photometry
from sedscale.sed.config import FitConfig
from sedscale.sed.fixed_costs import fixed_cost_counters, fixed_costs_since
from sedscale.sed.grid_store import read_arrays

BANDS = ("lsst_g", "lsst_r", "euclid_j", "euclid_h")
CONFIG = {"sfh": {"age": [0.5, 2.0], "tau": [0.3, 3.0]}, "stellar": {"metallicity": [1.0]},
          "dust_attenuation": {"av": [0.0, 1.0]}, "nebular": {"enabled": False}, "dust_emission": {"enabled": False}}
Z = [0.7, 0.8, 0.9]

#: One process: build the grid into the cache (a pause between its complete temporary file and the
#: rename keeps both writers inside the write at once), print a digest of what it got.
BUILDER = """
import hashlib, json, sys
from pathlib import Path
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import build_grid
g = build_grid(FitConfig.from_dict(json.loads(sys.argv[2])), json.loads(sys.argv[3]), json.loads(sys.argv[4]),
               cache_dir=Path(sys.argv[1]))
print(hashlib.sha256(g.flux.tobytes() + g.valid.tobytes()).hexdigest())
"""


def test_two_processes_building_one_grid_leave_one_whole_file(tmp_path: Path) -> None:
    cache, hooks = tmp_path / "grids", tmp_path / "hooks"
    hooks.mkdir()
    env = os.environ | {"SEDSCALE_TEST_GRID_WRITE_PAUSE": "1.0", "SEDSCALE_TEST_HOOK_DIR": str(hooks)}
    args = [str(cache), json.dumps(CONFIG), json.dumps(list(BANDS)), json.dumps(Z)]
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, *args], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    seen_whole = 0
    while any(p.poll() is None for p in procs):  # a reader meanwhile: nothing, or a whole verified file
        for path in cache.glob("grid-*.npz"):
            assert read_arrays(path) is not None
            seen_whole += 1
    digests = [p.communicate()[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert len(list(hooks.glob("in-grid-write-*"))) == 2  # both processes did write the entry
    assert digests[0] == digests[1]
    (path,) = cache.glob("grid-*.npz")  # one entry, no temporaries left beside it
    assert sorted(p.name for p in cache.iterdir()) == [path.name]
    grid_mod.clear_memory_cache()
    again = grid_mod.build_grid(FitConfig.from_dict(CONFIG), BANDS, Z, cache_dir=cache)
    assert hashlib.sha256(again.flux.tobytes() + again.valid.tobytes()).hexdigest() == digests[0]


def _photometry() -> Photometry:
    rng = np.random.default_rng(5)
    flux = rng.uniform(0.5, 5.0, (6, len(BANDS)))
    return Photometry(source_id=np.arange(6, dtype=np.int64), filters=BANDS, flux=flux, error=flux * 0.05,
                      redshift=np.linspace(0.700, 0.740, 6), row_index=np.arange(6, dtype=np.int64))


def test_a_fit_is_bit_identical_from_a_built_or_a_cached_grid(tmp_path: Path) -> None:
    # fine nodes, so the six redshifts need more than two nodes of one lattice block: a cached block
    cfg, phot = FitConfig.from_dict({**CONFIG, "redshift": {"node_step": 0.002}}), _photometry()
    grid_mod.clear_memory_cache()
    start = fixed_cost_counters()
    built = fit_photometry(phot, cfg, cache_dir=tmp_path)
    first = fixed_costs_since(start)
    files = {p: p.stat().st_mtime_ns for p in tmp_path.glob("grid-*.npz")}
    assert files and first["grid_build_s"] > 0
    grid_mod.clear_memory_cache()
    start = fixed_cost_counters()
    cached = fit_photometry(phot, cfg, cache_dir=tmp_path)
    second = fixed_costs_since(start)
    assert second["grid_build_s"] == 0 and second["grid_load_s"] > 0  # read, not built
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("grid-*.npz")} == files  # nothing rewritten
    assert built.chi2_red.tobytes() == cached.chi2_red.tobytes()
    assert built.best_index.tobytes() == cached.best_index.tobytes()
    assert set(built.estimates) == set(cached.estimates)
    for name, (mean, std) in built.estimates.items():
        assert mean.tobytes() == cached.estimates[name][0].tobytes(), name
        assert std.tobytes() == cached.estimates[name][1].tobytes(), name


def test_a_grid_built_by_other_physics_code_is_never_read(monkeypatch) -> None:
    cfg = FitConfig.from_dict(CONFIG)
    key = grid_mod.grid_cache_key(cfg, BANDS, np.asarray(Z))
    monkeypatch.setattr(grid_mod, "code_digest", lambda: "another checkout's sed sources")
    assert grid_mod.grid_cache_key(cfg, BANDS, np.asarray(Z)) != key


def test_a_killed_writers_leftovers_are_removed_by_a_later_write(tmp_path: Path) -> None:
    from sedscale.sed.grid_store import STALE_WRITING_SECONDS, write_arrays

    old, recent = tmp_path / ".writing-killed", tmp_path / ".writing-in-flight"
    for folder in (old, recent):
        folder.mkdir()
        (folder / "grid-x.npz").write_bytes(b"half a file")
    long_ago = time.time() - STALE_WRITING_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    write_arrays(tmp_path / "grid-y.npz", {"x": np.arange(3.0)})
    assert not old.exists() and recent.is_dir()  # another writer's folder in use is left alone
