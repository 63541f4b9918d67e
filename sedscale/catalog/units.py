"""Flux units: conversion to µJy, and agreement of the units a file records with a profile's.

Everything inside sedscale is in µJy. Magnitudes of 90 or more in absolute value (the usual
99 / -99 "not observed" sentinels) become NaN, i.e. "not observed in this band".

Units recorded in the file agree or the run stops, naming the column: a Parquet column whose
metadata said nJy, read with a profile saying µJy, once gave log M* +3 dex with every source
"accepted" and no warning. The reader collects ``{column: unit}`` from what the files record
(Parquet field metadata, astropy's ``table_meta_yaml``, FITS ``TUNIT``); :func:`check_units`
compares them through :mod:`astropy.units`, so ``uJy``, ``µJy``, ``microJy`` and ``1e-6 Jy`` are
one unit. A column with no recorded unit passes: most Parquet catalogs record none.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Mapping, Optional, Protocol

import numpy as np

from sedscale.errors import CatalogError

if TYPE_CHECKING:
    import astropy.units as u

# astropy.units is imported where a unit is parsed or converted, not at module load: this module
# is on every worker's import path (validation), and µJy, the generic profile's unit, needs no
# conversion (importing astropy.units cost each worker ~0.3 s before its first partition).

FluxUnit = Literal["uJy", "nJy", "mJy", "Jy", "ABmag"]
FLUX_UNITS: tuple[str, ...] = ("uJy", "nJy", "mJy", "Jy", "ABmag")
MAG_SENTINEL = 90.0

_LN10_OVER_2P5 = np.log(10.0) / 2.5


@lru_cache(maxsize=32)
def flux_factor_to_ujy(unit: str) -> float:
    """Multiplicative factor from a linear flux-density unit to µJy (via astropy.units)."""
    if unit == "uJy":
        return 1.0
    import astropy.units as u

    return float((1.0 * u.Unit(unit)).to(u.uJy).value)


def to_microjansky(values: np.ndarray, errors: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert a flux column and its error column to µJy.

    For ``ABmag`` the error column is a magnitude error: σ_f = f · ln(10)/2.5 · σ_m (first order).
    """
    values = np.asarray(values, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if unit == "ABmag":
        import astropy.units as u

        sentinel = np.abs(values) >= MAG_SENTINEL
        with np.errstate(invalid="ignore", over="ignore"):
            mags = np.where(sentinel, np.nan, values)
            flux = (mags * u.ABmag).to_value(u.uJy)
            err = flux * _LN10_OVER_2P5 * np.where(sentinel, np.nan, errors)
        return flux, err
    factor = flux_factor_to_ujy(unit)
    return values * factor, errors * factor


#: spellings of an AB magnitude; astropy parses "AB" as a *flux* unit (3631 Jy), so they are
#: recognised before parsing
_MAGNITUDES = frozenset({"mag", "abmag", "ab", "mag(ab)", "magab", "mag_ab", "abmags", "mags"})
#: SI prefixes written as words, which astropy's generic parser does not know (``microJy``)
_WORD_PREFIX = re.compile(r"^(micro|nano|milli)(?=jy$)", re.IGNORECASE)
_PREFIX_LETTER = {"micro": "u", "nano": "n", "milli": "m"}


def _normalise(text: str) -> str:
    compact = text.strip()
    return _WORD_PREFIX.sub(lambda m: _PREFIX_LETTER[m.group(1).lower()], compact)


def is_magnitude(text: str) -> bool:
    """Whether a recorded unit spells an (AB) magnitude."""
    return text.strip().replace(" ", "").lower() in _MAGNITUDES


def parse_unit(text: str) -> Optional[u.UnitBase]:
    """The astropy unit a file's unit string names (``None`` for a magnitude); ValueError if none."""
    import astropy.units as u

    if is_magnitude(text):
        return None
    unit = u.Unit(_normalise(text), parse_strict="raise")
    if not isinstance(unit, u.UnitBase):  # a function unit such as mag(AB) written otherwise
        return None
    return unit


def _same_flux_unit(file_unit: u.UnitBase, profile_unit: str) -> bool:
    import astropy.units as u

    target = u.Unit(profile_unit)
    if not file_unit.is_equivalent(target):
        return False
    return bool(abs(file_unit.to(target) - 1.0) < 1e-9)


def _agrees(recorded: str, profile_unit: str) -> bool:
    """Whether a recorded unit is the profile's unit; ValueError when it cannot be parsed."""
    if profile_unit == "ABmag":
        return is_magnitude(recorded) or parse_unit(recorded) is None
    parsed = parse_unit(recorded)
    return parsed is not None and _same_flux_unit(parsed, profile_unit)


def _check_one(column: str, recorded: str, expected: str, profile: str, source: str) -> None:
    try:
        ok = _agrees(recorded, expected)
    except ValueError as exc:
        raise CatalogError(
            f"{source}: column {column!r} records the unit {recorded!r}, which astropy cannot parse; "
            f"profile {profile!r} reads it as {expected} ({exc.__class__.__name__})"
        ) from exc
    if not ok:
        raise CatalogError(
            f"{source}: column {column!r} is in {recorded!r} according to the file, but profile "
            f"{profile!r} reads it as {expected}: fix the profile's unit (or the file's metadata)"
        )


class UnitExpectations(Protocol):
    """What a unit check needs of a profile: its name and the unit it reads each column in."""

    @property
    def name(self) -> str: ...

    def expected_units(self) -> list[tuple[str, str]]: ...


def check_units(profile: UnitExpectations, units: Mapping[str, str], source: str) -> None:
    """Stop unless every unit ``units`` records for a column ``profile`` reads is the profile's.

    ``units`` is ``{column: unit}`` as the files record it. Flux, error and scale columns must be
    in their band's unit (an ``ABmag`` band: any magnitude spelling); ``ra``/``dec``, when
    recorded, in degrees (see ``CatalogProfile.expected_units``). A column with no recorded unit
    passes; an unparseable recorded unit stops, saying so.
    """
    for column, expected in profile.expected_units():
        recorded = (units.get(column) or "").strip()
        if recorded:
            _check_one(column, recorded, expected, profile.name, source)
