"""Resolving a profile — a built-in name or a user's YAML file — against a catalog's schema.

Built-in profiles (:data:`BUILTIN_PROFILES`, built in :mod:`sedscale.catalog.survey_profiles`)
are derived from the schema; a user's profile is a YAML file in the format of DESIGN.md section 4,
optionally ``extends: <built-in>`` with the built-in's options and keys of its own. Every profile
resolves to the same :class:`CatalogProfile` and is checked against the schema (and against the
units the files record) before anything is read, so the rest of sedscale never branches on a name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pyarrow as pa
import yaml
from pydantic import ValidationError

from sedscale.bands import BUILTIN_BANDS
from sedscale.catalog.profile_model import BandColumn, CatalogProfile, FlagChoice, FluxScale
from sedscale.catalog.profile_options import OPTION_NAMES, ProfileOptions
from sedscale.catalog.survey_profiles import BUILTIN_PROFILES, build_builtin
from sedscale.catalog.units import check_units
from sedscale.errors import CatalogError, ConfigError

__all__ = ["BUILTIN_PROFILES", "BandColumn", "CatalogProfile", "FlagChoice", "FluxScale",
           "check_schema", "load_profile", "load_user_profile", "zero_point_snippet"]

_OVERRIDABLE = ("name", "id", "redshift", "ra", "dec")


def _validation_message(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(x) for x in first["loc"])
    return f"{path}: {where}: {first['msg']}"


def _resolve_filters(raw: dict[str, Any], path: Path) -> None:
    """Relative filter-file paths become absolute (relative to the profile file); stop if absent."""
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


def _merge_bands(base: list[dict[str, Any]], extra: list[Any]) -> list[Any]:
    """The built-in's bands with the user's: a user band replaces the one of the same filter."""
    merged: list[Any] = list(base)
    for band in extra:
        flt = band.get("filter") if isinstance(band, dict) else None
        same = next((i for i, b in enumerate(merged) if isinstance(b, dict) and b.get("filter") == flt), None)
        if same is None:
            merged.append(band)
        else:
            merged[same] = band
    return merged


def _extended(raw: dict[str, Any], path: Path, schema: pa.Schema, source: str) -> dict[str, Any]:
    """``extends: <built-in>``: build the built-in with the options given, then apply the user's keys."""
    base_name = str(raw.pop("extends"))
    try:
        options = ProfileOptions.model_validate({k: raw.pop(k) for k in OPTION_NAMES if k in raw})
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc
    try:
        base = build_builtin(base_name, schema, options, source)
    except ConfigError as exc:
        raise ConfigError(f"{path}: extends: {exc}") from exc
    merged = base.model_dump(exclude_none=False)
    for key in _OVERRIDABLE:
        if key in raw:
            merged[key] = raw.pop(key)
    merged["bands"] = _merge_bands(merged["bands"], list(raw.pop("bands", None) or []))
    merged.update(raw)  # anything else is refused by the model, by name
    return merged


def load_user_profile(path: Path, schema: Optional[pa.Schema] = None, source: str = "catalog") -> CatalogProfile:
    """Read a YAML profile; relative filter paths are relative to the profile file.

    ``schema`` is needed only by a profile that ``extends`` a built-in (which is derived from it).
    """
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such profile file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a profile must be a mapping with id, bands (and redshift)")
    raw.setdefault("name", path.stem)
    _resolve_filters(raw, path)
    if "extends" in raw:
        if schema is None:
            raise ConfigError(f"{path}: a profile that extends a built-in needs the catalog's schema")
        raw = _extended(raw, path, schema, source)
    else:
        options = sorted(set(raw) & set(OPTION_NAMES))
        if options:
            raise ConfigError(f"{path}: option(s) {', '.join(options)} belong to a built-in profile: "
                              f"add 'extends: <{' | '.join(BUILTIN_PROFILES)}>'")
    try:
        return CatalogProfile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc


def load_profile(name_or_path: str | Path, schema: pa.Schema, source: str = "catalog",
                 units: Optional[Mapping[str, str]] = None) -> CatalogProfile:
    """Resolve a built-in profile name (:data:`BUILTIN_PROFILES`) or YAML path for ``schema``.

    ``source`` names the catalog in error messages. The profile is checked against the schema
    (every column it names exists with a numeric type, an integer id) and, when ``units`` (the
    ``{column: unit}`` the files record) is given, against those units.
    """
    text = str(name_or_path)
    if text in BUILTIN_PROFILES:
        profile = build_builtin(text, schema, ProfileOptions(), source)
    else:
        path = Path(text)
        if not path.exists() and path.suffix not in (".yaml", ".yml"):
            raise ConfigError(
                f"unknown profile {text!r}: use one of {', '.join(BUILTIN_PROFILES)} or a YAML file"
            )
        profile = load_user_profile(path, schema, source)
    check_schema(profile, schema, source)
    if units:
        check_units(profile, units, source)
    return profile


def _flag_columns(profile: CatalogProfile) -> set[str]:
    refs = [r for b in profile.bands for r in (b.column, b.error)]
    refs += [r for b in profile.bands if b.scale for r in (b.scale.numerator, b.scale.denominator)]
    limit_flags = {b.limit_flag for b in profile.bands if b.limit_flag}
    return {r.flag for r in refs if isinstance(r, FlagChoice)} | limit_flags


def check_schema(profile: CatalogProfile, schema: pa.Schema, source: str) -> None:
    """Every column the profile names exists; the id is an integer, flags integer or boolean,
    the rest numeric. Columns only optional bands read may be absent (not observed here)."""
    names = set(schema.names)
    if profile.id not in names:
        raise CatalogError(f"{source}: no id column {profile.id!r} (profile {profile.name!r})")
    id_type = schema.field(profile.id).type
    if not pa.types.is_integer(id_type):
        raise CatalogError(
            f"{source}: id column {profile.id!r} has type {id_type}; an integer (int64) is required"
        )
    flags = _flag_columns(profile)
    optional = profile.optional_columns()
    for col in profile.columns()[1:]:
        if col not in names:
            if col in optional:
                continue  # an optional band this file lacks: not observed here
            raise CatalogError(f"{source}: no column {col!r} (named by profile {profile.name!r})")
        typ = schema.field(col).type
        if col in flags and (pa.types.is_integer(typ) or pa.types.is_boolean(typ)):
            continue
        if not (pa.types.is_floating(typ) or pa.types.is_integer(typ) or pa.types.is_decimal(typ)):
            kind = "an integer or boolean flag" if col in flags else "a numeric (float)"
            raise CatalogError(f"{source}: column {col!r} has type {typ}; {kind} column is required")


def zero_point_snippet(profile: CatalogProfile, zero_points: Sequence[float]) -> str:
    """The profile's ``bands:`` with each band's ``zero_point`` set (e.g. from
    :func:`sedscale.sed.zero_points.self_calibrate`), as YAML to paste into a user profile."""
    if len(zero_points) != len(profile.bands):
        raise ValueError(f"{len(zero_points)} zero points for {len(profile.bands)} bands")
    bands = [band.model_dump(mode="json", exclude_defaults=True) | {"zero_point": round(float(zp), 4)}
             for band, zp in zip(profile.bands, zero_points)]
    header = "# zero points by self-calibration (sedscale.sed.zero_points.self_calibrate)\n"
    return header + yaml.safe_dump({"bands": bands}, sort_keys=False, allow_unicode=True)
