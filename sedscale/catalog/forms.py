"""Which reader a catalog needs, and ``open_catalog``, the one entry point for every form.

* a **HATS** catalog or collection root (a directory with ``hats.properties`` or
  ``collection.properties``; local, ``s3://`` or ``https://``) → :mod:`sedscale.catalog.hats_catalog`;
* **FITS** files (``*.fits``, ``*.fit``, ``*.fits.gz``; one, a directory or a glob) →
  :mod:`sedscale.catalog.fits_tables`;
* otherwise **Parquet** (a file, a directory of ``*.parquet``, a glob) →
  :mod:`sedscale.catalog.parquet_files`.
"""

from __future__ import annotations

from sedscale.catalog import storage
from sedscale.catalog.fits_tables import open_fits
from sedscale.catalog.hats_catalog import looks_like_hats, open_hats
from sedscale.catalog.parquet_files import open_parquet
from sedscale.catalog.source import FITS_SUFFIXES, CatalogForm, CatalogPath, CatalogSource


def _single(path: CatalogPath) -> str | None:
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


def detect_form(path: CatalogPath) -> CatalogForm:
    """Which reader ``path`` needs (see the module docstring)."""
    texts = [str(p) for p in path] if isinstance(path, (list, tuple)) else [str(path)]
    one = _single(path)
    if one is not None and not any(ch in one for ch in "*?["):
        if looks_like_hats(storage.normalize(one)):
            return "hats"
    if all(t.lower().endswith(FITS_SUFFIXES) for t in texts):
        return "fits"
    if one is not None and storage.is_dir(storage.normalize(one)) and _dir_is_fits(storage.normalize(one)):
        return "fits"
    return "parquet"


def _dir_is_fits(location: str) -> bool:
    return bool(storage.find_files(location, FITS_SUFFIXES)) and not storage.find_files(location, (".parquet",))


def open_catalog(path: CatalogPath) -> CatalogSource:
    """Open a catalog given as a Parquet file/directory/glob, a HATS root, or FITS file(s).

    Raises :class:`CatalogError` naming the file (or HATS pixel) for: nothing matched, an
    unreadable or truncated file, a HATS directory without its properties file, a catalog with
    no rows.
    """
    form = detect_form(path)
    if form == "hats":
        one = _single(path)
        assert one is not None
        return open_hats(storage.normalize(one))
    if form == "fits":
        return open_fits(path)
    return open_parquet(path)
