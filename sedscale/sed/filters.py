"""Filter transmission curves: built-in bands (speclite, astro-sedpy) and user files.

Convention: detectors count photons, so a band flux is the photon-weighted mean
⟨f_ν⟩ = ∫ f_λ T λ dλ / ∫ T (c/λ) dλ (equivalently ⟨f_λ⟩ λ_p²/c with the pivot wavelength λ_p).
``T`` is the curve as given (total throughput for speclite's Euclid/LSST, effective area for
sedpy's Roman WFI); only its shape matters. A user file has two columns: wavelength in Å and
throughput (comments with ``#``); leading and trailing zero rows are trimmed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from sedscale.bands import BUILTIN_BANDS
from sedscale.errors import InputError
from sedscale.sed.derived_cache import cached_arrays


@dataclass(frozen=True, eq=False)
class Filter:
    """One transmission curve (observed frame)."""

    name: str
    wavelength: np.ndarray  # Å, increasing
    throughput: np.ndarray  # ≥ 0, relative

    @cached_property
    def pivot(self) -> float:
        """Pivot wavelength λ_p = sqrt(∫Tλ dλ / ∫T/λ dλ) in Å."""
        w, t = self.wavelength, self.throughput
        return float(np.sqrt(np.trapezoid(t * w, w) / np.trapezoid(t / w, w)))

    def sample(self, wave: np.ndarray) -> np.ndarray:
        """Throughput at ``wave`` (Å), zero outside the curve."""
        return np.interp(wave, self.wavelength, self.throughput, left=0.0, right=0.0)

    def average(self, edges: np.ndarray) -> np.ndarray:
        """Mean throughput over each pixel ``[edges[i], edges[i+1]]`` (Å).

        Pixel averages, not point samples, so that an emission line (one rest-frame pixel,
        Δlnλ = 0.001 ≈ 300 km/s) sees the curve smoothed over its width: fine structure such as
        the telluric bands in the LSST curves then varies smoothly with redshift.
        """
        w, t = self.wavelength, self.throughput
        out = np.zeros(edges.size - 1)
        lo = max(int(np.searchsorted(edges, w[0], side="right")) - 1, 0)
        hi = min(int(np.searchsorted(edges, w[-1], side="left")) + 1, edges.size)
        if hi - lo < 2:
            return out
        cum = _cumulative(self)
        e = np.clip(edges[lo:hi], w[0], w[-1])
        i = np.clip(np.searchsorted(w, e, side="right") - 1, 0, w.size - 2)
        f = (e - w[i]) / (w[i + 1] - w[i])
        t_e = t[i] + f * (t[i + 1] - t[i])
        integral = cum[i] + 0.5 * (t[i] + t_e) * (e - w[i])
        out[lo : hi - 1] = np.diff(integral) / np.diff(edges[lo:hi])
        return out


@lru_cache(maxsize=256)
def _cumulative(f: Filter) -> np.ndarray:
    """Cumulative trapezoid integral of the throughput (cached per curve)."""
    t, w = f.throughput, f.wavelength
    return np.concatenate([[0.0], np.cumsum(0.5 * (t[1:] + t[:-1]) * np.diff(w))])


def _trim(name: str, wave: np.ndarray, thr: np.ndarray) -> Filter:
    wave = np.asarray(wave, dtype=np.float64)
    thr = np.clip(np.asarray(thr, dtype=np.float64), 0.0, None)
    order = np.argsort(wave)
    wave, thr = wave[order], thr[order]
    nz = np.flatnonzero(thr > 0)
    if nz.size < 2:
        raise InputError(f"filter {name}: fewer than two points with positive throughput")
    lo, hi = max(nz[0] - 1, 0), min(nz[-1] + 1, wave.size - 1)
    wave, thr = wave[lo : hi + 1], thr[lo : hi + 1]
    for arr in (wave, thr):
        arr.flags.writeable = False
    return Filter(name=name, wavelength=wave, throughput=thr)


def _read_builtin(name: str) -> dict[str, np.ndarray]:
    """A built-in curve as its provider (speclite or sedpy) ships it."""
    info = BUILTIN_BANDS[name]
    if info.provider == "speclite":
        import speclite.filters

        f = speclite.filters.load_filter(info.key)
        return {"wavelength": np.asarray(f.wavelength, dtype=np.float64), "throughput": np.asarray(f.response, dtype=np.float64)}
    import sedpy.observate

    g = sedpy.observate.Filter(info.key)
    return {"wavelength": np.asarray(g.wavelength, dtype=np.float64), "throughput": np.asarray(g.transmission, dtype=np.float64)}


def _load_builtin(name: str) -> Filter:
    """A built-in curve, read through its provider once per provider version and then from the
    derived-array cache (reading nine curves through speclite/astropy took ~1.3 s per process)."""
    info = BUILTIN_BANDS[name]
    package = "speclite" if info.provider == "speclite" else "astro-sedpy"
    key = f"{name};{info.provider};{info.key};{package}={importlib.metadata.version(package)}"
    arrays = cached_arrays("filter", key, lambda: _read_builtin(name))
    return _trim(name, arrays["wavelength"], arrays["throughput"])


def _load_file(path: Path) -> Filter:
    try:
        data = np.loadtxt(path, usecols=(0, 1), comments="#", ndmin=2)
    except OSError as exc:
        raise InputError(f"filter file {path}: cannot read ({exc})") from None
    except ValueError as exc:
        raise InputError(f"filter file {path}: expected two numeric columns (Å, throughput): {exc}") from None
    if data.shape[0] < 2:
        raise InputError(f"filter file {path}: needs at least two rows (Å, throughput)")
    return _trim(str(path), data[:, 0], data[:, 1])


@lru_cache(maxsize=256)
def load_filter(spec: str) -> Filter:
    """The curve for a built-in band name (sedscale.bands) or a path to a two-column file.

    Cached by the filter string: each curve is read once per process.
    """
    if spec in BUILTIN_BANDS:
        return _load_builtin(spec)
    path = Path(spec)
    if not path.exists():
        known = ", ".join(BUILTIN_BANDS)
        raise InputError(f"filter {spec!r}: neither a built-in band ({known}) nor an existing file")
    return _load_file(path)


def load_filters(specs: tuple[str, ...] | list[str]) -> list[Filter]:
    """Curves for several filter strings, in order."""
    return [load_filter(s) for s in specs]


def filter_identity(spec: str) -> str:
    """A string that changes whenever the curve could: the band name for built-ins, the
    path plus a content hash for files (so an edited file invalidates cached grids)."""
    if spec in BUILTIN_BANDS:
        return spec
    path = Path(spec)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        digest = "missing"
    return f"{path.resolve()}#{digest}"
