"""Row validation: every row ends valid or quarantined with a reason code and a message.

Checks run vectorized over a partition's table; messages are built only for the quarantined
rows. A row gets the first reason that applies, in the order of :data:`REASONS`, so the same row
always gets the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from sedscale.catalog.photometry import Photometry
from sedscale.catalog.profiles import CatalogProfile
from sedscale.catalog.units import to_microjansky

REASONS: dict[str, str] = {
    "null_id": "the id is null",
    "duplicate_id": "the id appeared earlier in the catalog",
    "non_finite": "a flux, error or redshift is ±inf",
    "bad_error": "an error is ≤ 0 or NaN beside a finite flux",
    "out_of_bounds": "a value is outside the configured physical bounds",
    "no_bands": "every band is missing",
    "too_few_bands": "fewer usable bands than the workflow needs",
    "bad_redshift": "the redshift is negative or above the configured maximum",
    "missing_redshift": "the redshift is missing and the workflow needs one",
}

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("row_index", pa.int64()),
        pa.field("source_id", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("message", pa.string()),
    ]
)


class ValidationRules(BaseModel):
    """Configurable bounds; the defaults admit any real galaxy photometry in µJy."""

    model_config = ConfigDict(extra="forbid")

    min_bands: int = Field(3, ge=1, description="usable bands a source needs to be fitted")
    flux_min_ujy: float = Field(-1.0e6, description="fluxes below this are implausible")
    flux_max_ujy: float = Field(1.0e9, description="brighter than ~ -0.6 AB: not a galaxy")
    error_max_ujy: float = Field(1.0e9)
    redshift_max: float = Field(20.0, gt=0)
    require_redshift: bool = Field(False, description="True when the workflow does not allow photo-z")


@dataclass
class ValidationOutcome:
    """The valid rows as :class:`Photometry`, the rest as a quarantine table."""

    photometry: Photometry
    quarantine: pa.Table
    n_rows: int
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def n_valid(self) -> int:
        return len(self.photometry)

    @property
    def n_quarantined(self) -> int:
        return self.quarantine.num_rows


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False) if col.null_count == 0 else (
        col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    )


def validate_table(
    table: pa.Table,
    profile: CatalogProfile,
    rules: ValidationRules | None = None,
    *,
    duplicate_rows: Optional[np.ndarray] = None,
    row_offset: int = 0,
) -> ValidationOutcome:
    """Validate one partition's rows.

    ``duplicate_rows``: row indices (within ``table``) already known to repeat an id seen earlier
    in the catalog (from :func:`sedscale.catalog.duplicates.find_duplicate_ids`); duplicates
    inside the table are found here too. ``row_offset`` is added to row numbers in messages.
    """
    rules = rules or ValidationRules()
    n = table.num_rows
    nb = len(profile.bands)
    ids_arrow = table.column(profile.id)
    id_null = ids_arrow.is_null().to_numpy(zero_copy_only=False)
    ids = ids_arrow.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)

    flux = np.empty((n, nb))
    err = np.empty((n, nb))
    raw_flux = np.empty((n, nb))
    raw_err = np.empty((n, nb))
    for j, band in enumerate(profile.bands):
        raw_flux[:, j] = _float_column(table, band.column)
        raw_err[:, j] = _float_column(table, band.error)
        flux[:, j], err[:, j] = to_microjansky(raw_flux[:, j], raw_err[:, j], band.unit)
    z = _float_column(table, profile.redshift) if profile.redshift else np.full(n, np.nan)

    # Each check is a boolean per row (and, for band checks, per band, to name the column).
    dup = np.zeros(n, bool)
    if duplicate_rows is not None and len(duplicate_rows):
        dup[np.asarray(duplicate_rows, dtype=np.int64)] = True
    valid_ids = np.flatnonzero(~id_null)
    if valid_ids.size:
        order = valid_ids[np.argsort(ids[valid_ids], kind="stable")]
        repeat = np.zeros(order.size, bool)
        repeat[1:] = ids[order[1:]] == ids[order[:-1]]
        dup[order[repeat]] = True
    band_inf = np.isinf(raw_flux) | np.isinf(raw_err)
    z_inf = np.isinf(z)
    finite_flux = np.isfinite(flux)
    bad_err = finite_flux & ~(np.isfinite(err) & (err > 0))
    with np.errstate(invalid="ignore"):
        oob = finite_flux & ((flux < rules.flux_min_ujy) | (flux > rules.flux_max_ujy) | (err > rules.error_max_ujy))
    observed = finite_flux & np.isfinite(err) & (err > 0)
    no_bands = ~np.any(np.isfinite(raw_flux), axis=1)
    few = observed.sum(axis=1) < rules.min_bands
    with np.errstate(invalid="ignore"):
        bad_z = np.isfinite(z) & ((z < 0) | (z > rules.redshift_max))
    missing_z = np.isnan(z) & rules.require_redshift

    checks = [
        ("null_id", id_null),
        ("duplicate_id", dup),
        ("non_finite", band_inf.any(axis=1) | z_inf),
        ("bad_error", bad_err.any(axis=1)),
        ("out_of_bounds", oob.any(axis=1)),
        ("no_bands", no_bands),
        ("too_few_bands", few),
        ("bad_redshift", bad_z),
        ("missing_redshift", missing_z),
    ]
    reason_idx = np.full(n, -1, dtype=np.int64)
    for k, (_, mask) in enumerate(checks):
        reason_idx[(reason_idx < 0) & mask] = k
    bad = np.flatnonzero(reason_idx >= 0)

    def message(i: int) -> str:
        row = f"row {row_offset + i}"
        sid = "" if id_null[i] else f" (id {ids[i]})"
        code = checks[reason_idx[i]][0]
        if code in ("non_finite", "bad_error", "out_of_bounds"):
            mask = {"non_finite": band_inf, "bad_error": bad_err, "out_of_bounds": oob}[code]
            hits = np.flatnonzero(mask[i])
            if hits.size:
                b = profile.bands[hits[0]]
                return (f"{row}{sid}: {REASONS[code]}: {b.column}={float(raw_flux[i, hits[0]]):g}, "
                        f"{b.error}={float(raw_err[i, hits[0]]):g}")
            return f"{row}{sid}: {REASONS[code]}: {profile.redshift}={float(z[i]):g}"
        if code == "too_few_bands":
            return f"{row}{sid}: {int(observed[i].sum())} usable band(s), the workflow needs {rules.min_bands}"
        if code == "bad_redshift":
            return f"{row}{sid}: {profile.redshift}={float(z[i]):g} is outside [0, {rules.redshift_max:g}]"
        return f"{row}{sid}: {REASONS[code]}"

    quarantine = pa.table(
        {
            "row_index": pa.array(bad, pa.int64()),
            "source_id": pa.array(ids[bad], pa.int64(), mask=id_null[bad]),
            "reason": pa.array([checks[reason_idx[i]][0] for i in bad], pa.string()),
            "message": pa.array([message(int(i)) for i in bad], pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
    good = np.flatnonzero(reason_idx < 0)
    flux_good = np.where(observed[good], flux[good], np.nan)
    err_good = np.where(observed[good], err[good], np.nan)
    photometry = Photometry(
        source_id=ids[good].astype(np.int64),
        flux=flux_good,
        error=err_good,
        redshift=z[good],
        filters=profile.filters(),
        row_index=good.astype(np.int64),
    )
    counts: dict[str, int] = {}
    for k, (code, _) in enumerate(checks):
        c = int(np.count_nonzero(reason_idx == k))
        if c:
            counts[code] = c
    return ValidationOutcome(photometry=photometry, quarantine=quarantine, n_rows=n, reasons=counts)
