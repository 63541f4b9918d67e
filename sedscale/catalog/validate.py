"""Row validation: every row ends valid or quarantined with a reason code and a message.

Checks run vectorized over a partition's table; messages are built only for the quarantined
rows. A row gets the first reason that applies, in the order of :data:`REASONS`, so the same row
always gets the same reason.

A band is *usable* when its flux is finite and either its error is finite and > 0 (a measurement,
negative fluxes included) or the profile marks the flux as an upper limit with a usable width.
A finite flux whose error is NaN (or null) is "not observed" in that band: the band is dropped,
not the source. Fluxes and errors are in µJy after the band's unit and ``zero_point``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from sedscale.catalog.band_reader import float_column, limit_rows, read_band
from sedscale.catalog.photometry import Photometry
from sedscale.catalog.profile_model import CatalogProfile
from sedscale.catalog.units import to_microjansky

REASONS: dict[str, str] = {
    "null_id": "the id is null",
    "duplicate_id": "the id appeared earlier in the catalog",
    "non_finite": "a flux, error or redshift is ±inf",
    "bad_error": "an error is ≤ 0 beside a finite flux",
    "bad_limit": "a band flagged as an upper limit has no usable limit value or width",
    "out_of_bounds": "a value is outside the configured physical bounds",
    "no_bands": "every band is missing",
    "too_few_bands": "fewer usable bands than the workflow needs",
    "bad_redshift": "the redshift is negative or above the configured maximum",
    "missing_redshift": "the redshift is missing and the workflow needs one",
    "bad_ebv": "the Milky Way E(B−V) is negative, NaN or missing",
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
        return int(self.quarantine.num_rows)


@dataclass(frozen=True)
class _Columns:
    """One partition's id, photometry (as read and in µJy) and redshift, as arrays."""

    ids: np.ndarray
    id_null: np.ndarray
    raw_flux: np.ndarray  # (rows, bands), the catalog's units
    raw_err: np.ndarray
    flux: np.ndarray  # (rows, bands), µJy, zero points applied; upper limits: the limit
    err: np.ndarray  # measurements: the error; upper limits: the limit's 1σ width (NaN: none)
    is_limit: np.ndarray  # (rows, bands) bool: the flux is an upper limit
    z: np.ndarray
    ebv: np.ndarray  # Milky Way E(B−V); 0 where the profile names no column


def _limit_width(flux: np.ndarray, err: np.ndarray, is_limit: np.ndarray, limit_sigma: float) -> np.ndarray:
    """The error, except on limit rows: |error| where it is non-zero, else limit / limit_sigma."""
    with np.errstate(invalid="ignore"):
        given = np.abs(err)
        width = np.where(np.isfinite(given) & (given > 0), given, flux / limit_sigma)
    return np.where(is_limit, width, err)


def _read_columns(table: pa.Table, profile: CatalogProfile) -> _Columns:
    n, nb = table.num_rows, len(profile.bands)
    ids_arrow = table.column(profile.id)
    flux, err, raw_flux, raw_err = (np.empty((n, nb)) for _ in range(4))
    is_limit = np.zeros((n, nb), bool)
    negative_error = profile.upper_limits == "negative_error"
    for j, band in enumerate(profile.bands):
        raw_flux[:, j], raw_err[:, j] = read_band(table, band)
        is_limit[:, j] = limit_rows(table, band, raw_err[:, j], negative_error)
        f, e = to_microjansky(raw_flux[:, j], raw_err[:, j], band.unit)
        flux[:, j] = f * band.zero_point
        err[:, j] = _limit_width(flux[:, j], e * band.zero_point, is_limit[:, j], band.limit_sigma)
    return _Columns(
        ids=ids_arrow.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
        id_null=ids_arrow.is_null().to_numpy(zero_copy_only=False),
        raw_flux=raw_flux, raw_err=raw_err, flux=flux, err=err, is_limit=is_limit,
        z=float_column(table, profile.redshift) if profile.redshift else np.full(n, np.nan),
        ebv=float_column(table, profile.ebv) if profile.ebv else np.zeros(n),
    )


def _duplicate_mask(cols: _Columns, duplicate_rows: Optional[np.ndarray]) -> np.ndarray:
    """Rows whose id repeats one seen earlier: in an earlier partition (``duplicate_rows``) or here."""
    dup = np.zeros(len(cols.ids), bool)
    if duplicate_rows is not None and len(duplicate_rows):
        dup[np.asarray(duplicate_rows, dtype=np.int64)] = True
    valid_ids = np.flatnonzero(~cols.id_null)
    if valid_ids.size:
        order = valid_ids[np.argsort(cols.ids[valid_ids], kind="stable")]
        repeat = np.zeros(order.size, bool)
        repeat[1:] = cols.ids[order[1:]] == cols.ids[order[:-1]]
        dup[order[repeat]] = True
    return dup


@dataclass(frozen=True)
class _Checks:
    """Each check as a boolean per row (band checks also per band, to name the column); a row's
    reason is its first failed check in :data:`REASONS` order (``reason_idx``, -1 = valid)."""

    named: list[tuple[str, np.ndarray]]
    reason_idx: np.ndarray
    band_inf: np.ndarray
    bad_err: np.ndarray
    bad_limit: np.ndarray
    out_of_bounds: np.ndarray
    observed: np.ndarray


def _run_checks(cols: _Columns, rules: ValidationRules, dup: np.ndarray) -> _Checks:
    flux, err, z = cols.flux, cols.err, cols.z
    band_inf = np.isinf(cols.raw_flux) | np.isinf(cols.raw_err)
    with np.errstate(invalid="ignore"):
        width_ok = np.isfinite(err) & (err > 0)
        bad_err = np.isfinite(flux) & ~cols.is_limit & np.isfinite(err) & (err <= 0)
        bad_limit = cols.is_limit & ~(np.isfinite(flux) & width_ok)
        oob = np.isfinite(flux) & ((flux < rules.flux_min_ujy) | (flux > rules.flux_max_ujy) | (err > rules.error_max_ujy))
        bad_z = np.isfinite(z) & ((z < 0) | (z > rules.redshift_max))
        bad_ebv = ~(np.isfinite(cols.ebv) & (cols.ebv >= 0))
    observed = np.isfinite(flux) & width_ok
    named = [
        ("null_id", cols.id_null),
        ("duplicate_id", dup),
        ("non_finite", band_inf.any(axis=1) | np.isinf(z)),
        ("bad_error", bad_err.any(axis=1)),
        ("bad_limit", bad_limit.any(axis=1)),
        ("out_of_bounds", oob.any(axis=1)),
        ("no_bands", ~np.any(np.isfinite(cols.raw_flux), axis=1)),
        ("too_few_bands", observed.sum(axis=1) < rules.min_bands),
        ("bad_redshift", bad_z),
        ("missing_redshift", np.isnan(z) & rules.require_redshift),
        ("bad_ebv", bad_ebv),
    ]
    reason_idx = np.full(len(z), -1, dtype=np.int64)
    for k, (_, mask) in enumerate(named):
        reason_idx[(reason_idx < 0) & mask] = k
    return _Checks(named, reason_idx, band_inf, bad_err, bad_limit, oob, observed)


def _message(i: int, cols: _Columns, checks: _Checks, profile: CatalogProfile, rules: ValidationRules,
             row_offset: int) -> str:
    """What a quarantined row's reader needs: the row, its id, the reason and the offending values."""
    row = f"row {row_offset + i}"
    sid = "" if cols.id_null[i] else f" (id {cols.ids[i]})"
    code = checks.named[checks.reason_idx[i]][0]
    if code == "bad_ebv":
        return f"{row}{sid}: {REASONS[code]}: {profile.ebv}={float(cols.ebv[i]):g}"
    if code in ("non_finite", "bad_error", "bad_limit", "out_of_bounds"):
        mask = {"non_finite": checks.band_inf, "bad_error": checks.bad_err, "bad_limit": checks.bad_limit,
                "out_of_bounds": checks.out_of_bounds}[code]
        hits = np.flatnonzero(mask[i])
        if hits.size:
            b = profile.bands[hits[0]]
            return (f"{row}{sid}: {REASONS[code]}: {b.label}={float(cols.raw_flux[i, hits[0]]):g}, "
                    f"{b.error_label}={float(cols.raw_err[i, hits[0]]):g}")
        return f"{row}{sid}: {REASONS[code]}: {profile.redshift}={float(cols.z[i]):g}"
    if code == "too_few_bands":
        return f"{row}{sid}: {int(checks.observed[i].sum())} usable band(s), the workflow needs {rules.min_bands}"
    if code == "bad_redshift":
        return f"{row}{sid}: {profile.redshift}={float(cols.z[i]):g} is outside [0, {rules.redshift_max:g}]"
    return f"{row}{sid}: {REASONS[code]}"


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
    cols = _read_columns(table, profile)
    checks = _run_checks(cols, rules, _duplicate_mask(cols, duplicate_rows))
    bad = np.flatnonzero(checks.reason_idx >= 0)
    quarantine = pa.table(
        {
            "row_index": pa.array(bad, pa.int64()),
            "source_id": pa.array(cols.ids[bad], pa.int64(), mask=cols.id_null[bad]),
            "reason": pa.array([checks.named[checks.reason_idx[i]][0] for i in bad], pa.string()),
            "message": pa.array([_message(int(i), cols, checks, profile, rules, row_offset) for i in bad], pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
    good = np.flatnonzero(checks.reason_idx < 0)
    observed = checks.observed[good]
    photometry = Photometry(
        source_id=cols.ids[good].astype(np.int64),
        flux=np.where(observed, cols.flux[good], np.nan),
        error=np.where(observed, cols.err[good], np.nan),
        redshift=cols.z[good],
        filters=profile.filters(),
        row_index=good.astype(np.int64),
        is_limit=observed & cols.is_limit[good],
        ebv=cols.ebv[good],
    )
    counts = {code: int(np.count_nonzero(checks.reason_idx == k)) for k, (code, _) in enumerate(checks.named)}
    return ValidationOutcome(photometry=photometry, quarantine=quarantine, n_rows=table.num_rows,
                             reasons={code: c for code, c in counts.items() if c})
