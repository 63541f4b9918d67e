"""The built-in profiles, each derived from a catalog's schema (and its options).

* ``generic``: sedscale's own names (DESIGN.md section 4), every built-in band, µJy;
* ``roman-generic``: the same names restricted to Roman's WFI bands (what ``roman`` meant before
  romancal's catalogs could be read);
* ``roman``: romancal's source catalogs — ``<family>_<band>_flux`` / ``_flux_err`` in nJy;
* ``euclid-q1`` / ``euclid-q1-irsa``: see :mod:`sedscale.catalog.euclid_profiles`.

A builder takes ``(schema, options, source)`` and returns a :class:`CatalogProfile`; each declares
the options it accepts, so an option given to the wrong profile is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyarrow as pa

from sedscale.bands import BUILTIN_BANDS, ROMAN_BANDS
from sedscale.catalog.euclid_profiles import IRSA, NATIVE, euclid_profile
from sedscale.catalog.profile_model import BandColumn, CatalogProfile
from sedscale.catalog.profile_options import ProfileOptions
from sedscale.errors import CatalogError, ConfigError

Builder = Callable[[pa.Schema, ProfileOptions, str], CatalogProfile]


def _first_present(names: set[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in names), None)


def _generic_names(schema: pa.Schema, bands: tuple[str, ...], name: str, source: str) -> CatalogProfile:
    """``source_id``, ``flux_<BAND>``/``fluxerr_<BAND>`` in µJy, optional ``redshift``, ``ra``, ``dec``."""
    names = set(schema.names)
    out = []
    for band in bands:
        flux, err = f"flux_{band}", f"fluxerr_{band}"
        if flux in names:
            if err not in names:
                raise CatalogError(f"{source}: column {flux!r} has no error column {err!r}")
            out.append(BandColumn(column=flux, error=err, unit="uJy", filter=band))
    if not out:
        raise CatalogError(
            f"{source}: no recognisable band column for profile {name!r} (expected "
            f"flux_<BAND> and fluxerr_<BAND> with BAND one of {', '.join(bands)})"
        )
    has_position = "ra" in names and "dec" in names
    return CatalogProfile(name=name, id="source_id", redshift=_first_present(names, ("redshift",)),
                          ra="ra" if has_position else None, dec="dec" if has_position else None, bands=out)


def _generic(schema: pa.Schema, options: ProfileOptions, source: str) -> CatalogProfile:
    return _generic_names(schema, tuple(BUILTIN_BANDS), "generic", source)


def _roman_generic(schema: pa.Schema, options: ProfileOptions, source: str) -> CatalogProfile:
    return _generic_names(schema, ROMAN_BANDS, "roman-generic", source)


#: romancal's id (``label``, a segment label unique within one skycell only) comes last: a unique
#: id the user added wins
_ROMAN_IDS = ("source_id", "id", "label")
#: ``ra``/``dec`` (romancal's best position) in current catalogs, ``*_centroid`` in older ones
_ROMAN_POSITIONS = (("ra", "dec"), ("ra_centroid", "dec_centroid"))
#: a redshift the user joined, else romancal's own photo-z point estimate
_ROMAN_REDSHIFTS = ("redshift", "photoz")


def _roman(schema: pa.Schema, options: ProfileOptions, source: str) -> CatalogProfile:
    """romancal's Parquet: ``<family>_<band>_flux`` and ``_flux_err`` (nJy), bands lower-case."""
    names = set(schema.names)
    family = options.family or "kron"
    out = []
    for band in ROMAN_BANDS:
        short = band.removeprefix("roman_")  # roman_f158 → f158
        flux = f"{family}_{short}_flux"
        if flux in names:
            if f"{flux}_err" not in names:
                raise CatalogError(f"{source}: column {flux!r} has no error column {flux + '_err'!r}")
            # a band a skycell was not observed in is absent from its file: not observed, not a fault
            out.append(BandColumn(column=flux, error=f"{flux}_err", unit="nJy", filter=band, optional=True))
    if not out:
        raise CatalogError(
            f"{source}: no romancal band column for profile 'roman' family {family!r} (expected "
            f"{family}_<band>_flux with band one of f062 … f213; for sedscale's generic names "
            f"flux_roman_<band> use profile 'roman-generic')"
        )
    ident = _first_present(names, _ROMAN_IDS)
    if ident is None:
        raise CatalogError(f"{source}: no id column (one of {', '.join(_ROMAN_IDS)}) for profile 'roman'")
    ra, dec = next(((r, d) for r, d in _ROMAN_POSITIONS if r in names and d in names), (None, None))
    return CatalogProfile(name="roman", id=ident, redshift=_first_present(names, _ROMAN_REDSHIFTS),
                          ra=ra, dec=dec, bands=out)


def _euclid_q1(schema: pa.Schema, options: ProfileOptions, source: str) -> CatalogProfile:
    return euclid_profile(NATIVE, schema, options, source)


def _euclid_q1_irsa(schema: pa.Schema, options: ProfileOptions, source: str) -> CatalogProfile:
    return euclid_profile(IRSA, schema, options, source)


@dataclass(frozen=True)
class BuiltinProfile:
    """A built-in profile: how it is derived from a schema, and the options it takes."""

    build: Builder
    options: frozenset[str]


_EUCLID_OPTIONS = frozenset({"total_flux", "vis_flux"})
BUILTINS: dict[str, BuiltinProfile] = {
    "generic": BuiltinProfile(_generic, frozenset()),
    "euclid-q1": BuiltinProfile(_euclid_q1, _EUCLID_OPTIONS),
    "euclid-q1-irsa": BuiltinProfile(_euclid_q1_irsa, _EUCLID_OPTIONS),
    "roman": BuiltinProfile(_roman, frozenset({"family"})),
    "roman-generic": BuiltinProfile(_roman_generic, frozenset()),
}
BUILTIN_PROFILES: tuple[str, ...] = tuple(BUILTINS)


def build_builtin(name: str, schema: pa.Schema, options: ProfileOptions, source: str) -> CatalogProfile:
    """The built-in profile ``name`` for ``schema``; an option it does not take is a ConfigError."""
    builtin = BUILTINS.get(name)
    if builtin is None:
        raise ConfigError(f"unknown built-in profile {name!r}: use one of {', '.join(BUILTIN_PROFILES)}")
    refused = sorted(options.given() - builtin.options)
    if refused:
        takes = ", ".join(sorted(builtin.options)) or "none"
        raise ConfigError(f"profile {name!r} does not take option(s) {', '.join(refused)} (it takes: {takes})")
    return builtin.build(schema, options, source)
