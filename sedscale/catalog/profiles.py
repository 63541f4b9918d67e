"""Catalog profiles: which columns hold the id, the redshift and each band's flux and error.

Built-in profiles (``generic``, ``euclid-q1``, ``roman``) are derived from a catalog's schema;
a user's profile is a YAML file in the format of DESIGN.md section 4. Every profile resolves to
the same :class:`CatalogProfile`, so the rest of sedscale never branches on a profile's name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sedscale.bands import BUILTIN_BANDS, ROMAN_BANDS
from sedscale.catalog.units import FLUX_UNITS
from sedscale.errors import CatalogError, ConfigError

BUILTIN_PROFILES = ("generic", "euclid-q1", "roman")


class BandColumn(BaseModel):
    """One band: its flux and error columns, their unit, and its filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    error: str
    unit: str = "uJy"
    filter: str = Field(description="a built-in band name or a filter file (Å, throughput)")
    optional: bool = Field(False, description="a band absent from some files is 'not observed', not a fault")

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if value not in FLUX_UNITS:
            raise ValueError(f"unit {value!r} is not one of {', '.join(FLUX_UNITS)}")
        return value


class CatalogProfile(BaseModel):
    """The column map of a catalog; ``filters`` are built-in names or absolute file paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "user"
    id: str
    redshift: Optional[str] = None
    ra: Optional[str] = Field(None, description="right ascension column (degrees), carried into the results")
    dec: Optional[str] = Field(None, description="declination column (degrees), carried into the results")
    bands: list[BandColumn] = Field(min_length=1)

    def columns(self) -> list[str]:
        """The columns to project when reading: id, redshift, position, fluxes and errors."""
        cols = [self.id]
        for extra in (self.redshift, self.ra, self.dec):
            if extra:
                cols.append(extra)
        for band in self.bands:
            cols.extend([band.column, band.error])
        return cols

    def optional_columns(self) -> frozenset[str]:
        """Columns a file may lack (those of ``optional`` bands): read as all-null, i.e. not observed."""
        return frozenset(c for band in self.bands if band.optional for c in (band.column, band.error))

    def filters(self) -> tuple[str, ...]:
        return tuple(band.filter for band in self.bands)


def _generic(schema: pa.Schema, bands: tuple[str, ...], name: str, source: str) -> CatalogProfile:
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
    redshift = "redshift" if "redshift" in names else None
    return CatalogProfile(name=name, id="source_id", redshift=redshift, bands=out)


_EUCLID_NISP = {"Y": "euclid_y", "J": "euclid_j", "H": "euclid_h"}
_EXT_PATTERN = re.compile(r"^FLUX_([UGRIZ])_EXT_([A-Z]+)_TEMPLFIT$")
_EXT_INSTRUMENTS = {"DECAM": "decam", "MEGACAM": "megacam", "HSC": "hsc", "PANSTARRS": "panstarrs", "LSST": "lsst"}


def _euclid_q1(schema: pa.Schema, source: str) -> CatalogProfile:
    """The MER catalogue's own names (µJy): VIS PSF flux, NISP and external template fits."""
    names = set(schema.names)
    if "OBJECT_ID" not in names:
        raise CatalogError(f"{source}: no id column 'OBJECT_ID' (profile 'euclid-q1')")
    out: list[BandColumn] = []
    if "FLUX_VIS_PSF" in names:
        out.append(BandColumn(column="FLUX_VIS_PSF", error="FLUXERR_VIS_PSF", filter="euclid_vis"))
    for letter, band in _EUCLID_NISP.items():
        col = f"FLUX_{letter}_TEMPLFIT"
        if col in names:
            out.append(BandColumn(column=col, error=f"FLUXERR_{letter}_TEMPLFIT", filter=band))
    for col in sorted(names):
        match = _EXT_PATTERN.match(col)
        if not match:
            continue
        letter, instrument = match.groups()
        prefix = _EXT_INSTRUMENTS.get(instrument)
        ext_band = f"{prefix}_{letter.lower()}" if prefix else None
        if ext_band is None or ext_band not in BUILTIN_BANDS:
            continue  # an instrument/band without a shipped curve: not fitted, said in the docs
        out.append(BandColumn(column=col, error=col.replace("FLUX_", "FLUXERR_", 1), filter=ext_band))
    for found in out:
        if found.error not in names:
            raise CatalogError(f"{source}: column {found.column!r} has no error column {found.error!r}")
    if not out:
        raise CatalogError(f"{source}: no recognisable Euclid band column (e.g. FLUX_VIS_PSF)")
    redshift = "redshift" if "redshift" in names else None
    return CatalogProfile(name="euclid-q1", id="OBJECT_ID", redshift=redshift, bands=out)


def load_user_profile(path: Path) -> CatalogProfile:
    """Read a YAML profile; relative filter paths are relative to the profile file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such profile file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a profile must be a mapping with id, bands (and redshift)")
    raw.setdefault("name", path.stem)
    for i, band in enumerate(raw.get("bands") or []):
        if isinstance(band, dict) and isinstance(band.get("filter"), str):
            flt = band["filter"]
            if flt not in BUILTIN_BANDS:
                fpath = Path(flt)
                if not fpath.is_absolute():
                    fpath = (path.parent / fpath).resolve()
                if not fpath.is_file():
                    raise ConfigError(
                        f"{path}: bands[{i}].filter {flt!r} is neither a built-in band name nor "
                        f"an existing filter file (looked for {fpath})"
                    )
                band["filter"] = str(fpath)
    try:
        return CatalogProfile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc


def load_profile(name_or_path: str | Path, schema: pa.Schema, source: str = "catalog") -> CatalogProfile:
    """Resolve a profile name (``generic``, ``euclid-q1``, ``roman``) or YAML path for ``schema``.

    ``source`` names the catalog in error messages. The profile is checked against the schema:
    every column it names must exist with a numeric type (integer id).
    """
    text = str(name_or_path)
    if text == "generic":
        profile = _generic(schema, tuple(BUILTIN_BANDS), "generic", source)
    elif text == "roman":
        profile = _generic(schema, ROMAN_BANDS, "roman", source)
    elif text == "euclid-q1":
        profile = _euclid_q1(schema, source)
    else:
        path = Path(text)
        if not path.exists() and path.suffix not in (".yaml", ".yml"):
            raise ConfigError(
                f"unknown profile {text!r}: use one of {', '.join(BUILTIN_PROFILES)} or a YAML file"
            )
        profile = load_user_profile(path)
    check_schema(profile, schema, source)
    return profile


def check_schema(profile: CatalogProfile, schema: pa.Schema, source: str) -> None:
    """Every column the profile names exists; the id is an integer, the rest numeric."""
    names = set(schema.names)
    if profile.id not in names:
        raise CatalogError(f"{source}: no id column {profile.id!r} (profile {profile.name!r})")
    id_type = schema.field(profile.id).type
    if not pa.types.is_integer(id_type):
        raise CatalogError(
            f"{source}: id column {profile.id!r} has type {id_type}; an integer (int64) is required"
        )
    numeric = [b.column for b in profile.bands] + [b.error for b in profile.bands]
    numeric += [c for c in (profile.redshift, profile.ra, profile.dec) if c]
    optional = profile.optional_columns()
    for col in numeric:
        if col not in names:
            if col in optional:
                continue  # an optional band this file lacks: not observed here
            raise CatalogError(f"{source}: no column {col!r} (named by profile {profile.name!r})")
        typ = schema.field(col).type
        if not (pa.types.is_floating(typ) or pa.types.is_integer(typ) or pa.types.is_decimal(typ)):
            raise CatalogError(
                f"{source}: column {col!r} has type {typ}; a numeric (float) column is required"
            )
