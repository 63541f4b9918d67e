"""Reading one band's flux and error from a partition's table, as its profile entry says.

A plain column is read as float64 (null → NaN, "not observed"); a :class:`FlagChoice` picks per
row; a :class:`FluxScale` multiplies flux and error by ``numerator / denominator`` of the row, and
a row whose factor is not finite and positive has the band not observed (NaN) rather than a
sign-flipped or infinite flux. Values stay in the catalog's unit; conversion to µJy (and the
band's zero point) comes after. :func:`limit_rows` says where a band's flux is an upper limit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sedscale.catalog.profile_model import BandColumn, ColumnRef, FlagChoice


def float_column(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64, nulls as NaN."""
    col = table.column(name)
    if col.null_count == 0:
        values: np.ndarray = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        return values
    filled: np.ndarray = col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    return filled


def flag_set(table: pa.Table, name: str) -> np.ndarray:
    """Rows where the flag column equals 1 or true (null or anything else: not set)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(float_column(table, name) == 1.0)


def read_ref(table: pa.Table, ref: ColumnRef) -> np.ndarray:
    """The values a column reference gives, per row, as float64."""
    if isinstance(ref, FlagChoice):
        return np.where(flag_set(table, ref.flag), float_column(table, ref.flagged),
                        float_column(table, ref.unflagged))
    return float_column(table, ref)


def read_band(table: pa.Table, band: BandColumn) -> tuple[np.ndarray, np.ndarray]:
    """The band's flux and error per row, in the catalog's unit, with its scale applied."""
    flux, error = read_ref(table, band.column), read_ref(table, band.error)
    if band.scale is None:
        return flux, error
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = read_ref(table, band.scale.numerator) / read_ref(table, band.scale.denominator)
    usable = np.isfinite(factor) & (factor > 0)
    factor = np.where(usable, factor, np.nan)
    return flux * factor, error * factor


def limit_rows(table: pa.Table, band: BandColumn, error: np.ndarray, negative_error: bool) -> np.ndarray:
    """Rows where the band's flux is an upper limit: its ``limit_flag`` is set, or (profile key
    ``upper_limits: negative_error``, CIGALE's convention) its error is negative."""
    rows = flag_set(table, band.limit_flag) if band.limit_flag else np.zeros(table.num_rows, bool)
    if negative_error:
        with np.errstate(invalid="ignore"):
            rows = rows | (error < 0)
    return rows
