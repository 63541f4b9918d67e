"""Every process runs the fused kernel as loaded from numba's on-disk cache, never as compiled by
itself.

Why: numba's machine code for :mod:`sedscale.sed.kernel_numba` differs between a process that
compiled it and a process that loaded the same functions from the cache (measured on a
3,000-source fit: log M* differs by up to 1.3e-7 dex, log SFR by 1.0e-6, in half of the rows;
two compiling processes agree bit for bit, as do two loading ones). A campaign whose first
worker compiled on a cold cache and whose resumed worker loaded would not reproduce its own
results. So on a cold cache the first process compiles in a child process — which writes the
cache — and then loads, like every later process; a node-wide lock stops concurrent workers from
compiling twice. The child runs the real fitting path (known redshift and photo-z) so it
compiles exactly the signatures production calls.

A marker file beside numba's cache names what was compiled (kernel source, numba, Python, the
CPU's target as numba sees it); without it, or when the child fails (e.g. a read-only cache
directory, where numba compiles in every process anyway), the process falls back to compiling
in-process and logs why.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: Set in the child so that it compiles instead of recursing.
CHILD_ENV = "SEDSCALE_KERNEL_CACHE_CHILD"

_lock = threading.Lock()
_ready = False


def _entry_points() -> list:
    from sedscale.sed.kernel_numba import pilot_block, scan_block

    return [pilot_block, scan_block]


def cache_key() -> str:
    """What the cached code depends on: the kernel's source, numba, Python and the CPU target."""
    import numba
    from numba.core.registry import cpu_target

    import sedscale.sed.kernel_numba as kn

    h = hashlib.sha256(Path(kn.__file__).read_bytes())
    h.update(repr((numba.__version__, sys.version_info[:3],
                   cpu_target.target_context.codegen().magic_tuple())).encode())
    return h.hexdigest()[:16]


def marker_path() -> Path:
    """The marker beside numba's cache of the kernel (its directory follows numba's own choice)."""
    return Path(_entry_points()[0].stats.cache_path) / f"sedscale-kernel-{cache_key()}.ready"


def ensure_kernel_cached() -> None:
    """Make sure this process will load the kernel from the cache (once per process; cheap after)."""
    global _ready
    if _ready:
        return
    with _lock:
        if _ready:
            return
        from sedscale.sed.kernel_numba import HAVE_NUMBA

        if not HAVE_NUMBA or os.environ.get(CHILD_ENV) == "1" or os.environ.get("NUMBA_DISABLE_JIT") == "1":
            _ready = True
            return
        try:
            marker = marker_path()
            if not marker.exists():
                _compile_in_child(marker)
        except Exception as exc:  # noqa: BLE001 — never fail a fit over the cache; say so
            log.warning("numba kernel cache not prepared (%s: %s); this process compiles the kernel "
                        "itself, so its results may differ from cache-loading processes by ~1e-7",
                        type(exc).__name__, exc)
        _ready = True


def _compile_in_child(marker: Path) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    with open(marker.parent / "sedscale-kernel.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker of this node may be compiling
        try:
            if marker.exists():
                return
            log.warning("compiling the numba kernel once for this installation (about 20 s)")
            proc = subprocess.run([sys.executable, "-m", "sedscale.sed.kernel_cache"],
                                  env=os.environ | {CHILD_ENV: "1"}, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"the compiling child exited {proc.returncode}: "
                                   f"{(proc.stderr or proc.stdout).strip()[-500:]}")
            tmp = marker.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text("compiled by a child process; numba's cache holds the kernel\n")
            os.replace(tmp, marker)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def compile_production_signatures() -> None:
    """Fit a small mock the way production does (known redshift, then photo-z) so that numba
    compiles and caches every signature of the kernel's entry points."""
    import numpy as np

    from sedscale.catalog.photometry import Photometry
    from sedscale.sed.api import fit_photometry
    from sedscale.sed.config import FitConfig

    bands = ("euclid_vis", "euclid_y", "euclid_j", "euclid_h")
    rng = np.random.default_rng(0)
    n = 8
    flux = rng.uniform(0.5, 5.0, (n, len(bands)))
    flux[0] *= 1e4  # a high-S/N row takes the kernel's exact path
    error = flux * 0.05
    phot = Photometry(source_id=np.arange(n, dtype=np.int64), filters=bands, flux=flux, error=error,
                      redshift=np.linspace(0.3, 2.0, n), row_index=np.arange(n, dtype=np.int64))
    cfg = FitConfig.model_validate({"sfh": {"age": [0.5, 3.0], "tau": [1.0]}, "stellar": {"metallicity": [1.0]},
                                    "dust_attenuation": {"av": [0.0, 1.0]}, "nebular": {"enabled": False},
                                    "dust_emission": {"enabled": False}})
    fit_photometry(phot, cfg)
    fit_photometry(phot, cfg, photoz=True)


if __name__ == "__main__":
    compile_production_signatures()
    misses = {f.__name__: sum(f.stats.cache_misses.values()) for f in _entry_points()}
    print(f"compiled and cached: {misses}")
