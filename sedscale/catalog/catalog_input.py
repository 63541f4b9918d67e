"""A catalog opened for fitting: its source, its resolved profile, and every check that can fail
before a row is read — one function, so ``validate``, ``plan``, ``fit`` and ``submit`` refuse the
same inputs with the same messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from sedscale.catalog.profiles import CatalogProfile, load_profile
from sedscale.catalog.forms import open_catalog
from sedscale.catalog.source import CatalogSource
from sedscale.errors import CatalogError

CatalogSpec = Union[str, Path, Sequence[Union[str, Path]]]


def catalog_arg(spec: Sequence[Union[str, Path]]) -> CatalogSpec:
    """A CLI's list of catalog arguments as ``open_catalog`` takes them (one item unwrapped)."""
    return spec[0] if len(spec) == 1 else list(spec)


def open_for_profile(spec: CatalogSpec, profile_spec: str | Path) -> tuple[CatalogSource, CatalogProfile]:
    """Open ``spec``, resolve the profile against its schema, and check — for the profile's
    columns only — that every file has them with one type and with the units the profile says."""
    source = open_catalog(spec)
    profile = load_profile(profile_spec, source.schema, source=source.name)
    source.check_columns(profile.columns(), profile.optional_columns())
    check_recorded_units(source, profile)
    return source, profile


def check_recorded_units(source: CatalogSource, profile: CatalogProfile) -> None:
    """Units the files record must agree with the profile's (see :mod:`sedscale.catalog.units`)."""
    from sedscale.catalog.units import check_units

    for column in profile.columns():
        if column in source.unit_conflicts:
            raise CatalogError(f"column {column!r}: {source.unit_conflicts[column]}; every file of a "
                               "catalog must record the same unit")
    check_units(profile, source.units, source.name)
