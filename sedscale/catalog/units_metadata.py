"""The units a catalog's files *record* for their columns, collected from their metadata.

Sources, in order of precedence: a Parquet field's own metadata (``unit``, as IRSA's HATS
``_common_metadata`` carries), astropy's ``table_meta_yaml`` schema metadata (what
``astropy.table.Table.write(..., format="parquet")`` stores, e.g. romancal catalogs), and for FITS
the ``TUNITn`` keywords (collected by :mod:`sedscale.catalog.fits_tables`). The profile's units
are checked against these before anything is fitted, so a nJy column read as µJy stops the run
instead of shifting every mass by 3 dex.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import pyarrow as pa
import yaml


def _astropy_units(schema: pa.Schema) -> dict[str, str]:
    raw = (schema.metadata or {}).get(b"table_meta_yaml")
    if not raw:
        return {}
    try:
        doc = yaml.safe_load(raw.decode("utf-8", "replace"))
    except yaml.YAMLError:
        return {}
    out: dict[str, str] = {}
    for entry in (doc or {}).get("datatype", []) if isinstance(doc, dict) else []:
        if isinstance(entry, dict) and entry.get("unit") and entry.get("name"):
            out[str(entry["name"])] = str(entry["unit"])
    return out


def units_of_schema(schema: pa.Schema) -> dict[str, str]:
    """``{column: unit}`` for the columns whose unit ``schema`` records."""
    out = _astropy_units(schema)
    for field in schema:
        meta = field.metadata or {}
        unit = meta.get(b"unit") or meta.get(b"units")
        if unit:
            out[field.name] = unit.decode("utf-8", "replace").strip()
    return {k: v for k, v in out.items() if v}


def merge_units(per_file: Iterable[tuple[str, Mapping[str, str]]]) -> tuple[dict[str, str], dict[str, str]]:
    """The recorded units over several files (``(file, {column: unit})`` each): ``(units,
    conflicts)`` where ``conflicts`` maps a column whose files disagree to a message naming two of
    them. A conflict stops a run only for a column the profile uses
    (:func:`sedscale.catalog.catalog_input.check_recorded_units`), as type differences do."""
    units: dict[str, str] = {}
    first: dict[str, str] = {}
    conflicts: dict[str, str] = {}
    for where, found in per_file:
        for name, unit in found.items():
            if name not in units:
                units[name], first[name] = unit, where
            elif units[name] != unit and name not in conflicts:
                conflicts[name] = f"{where} records unit {unit!r}, but {first[name]} records {units[name]!r}"
    return units, conflicts
