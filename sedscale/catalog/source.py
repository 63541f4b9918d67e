"""What an opened catalog is, whatever its form: :class:`CatalogSource` and its files.

:func:`sedscale.catalog.forms.open_catalog` opens flat Parquet, HATS catalogs and FITS tables;
every form yields the same :class:`CatalogSource`: files in a deterministic order with their row
counts (and row groups, and HATS pixel), the schema the profile is resolved against, the units the
files record, and the distinct schemas seen. Opening reads metadata only — Parquet footers, a HATS
catalog's ``_metadata``, FITS headers — never data, so it costs the same for 10^9 rows.

Cross-file checks happen in :meth:`CatalogSource.check_columns`, for the columns a profile uses
only: a type difference in a column nobody reads must not stop a run, and comparing all 1,594
columns of every file pairwise made opening O(columns²) per file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Literal, Mapping, Sequence, Union

import pyarrow as pa

from sedscale.catalog import storage
from sedscale.errors import CatalogError

CatalogPath = Union[str, Path, Sequence[Union[str, Path]]]
CatalogForm = Literal["parquet", "hats", "fits"]
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fts")


@dataclass(frozen=True)
class CatalogFile:
    """One file of a catalog, as its metadata describes it.

    ``path`` is an absolute local path or a remote URI (see :mod:`sedscale.catalog.storage`).
    ``size``/``mtime_ns`` are -1 where the form does not stat each file (a HATS catalog is
    fingerprinted by its metadata files instead). ``row_group_rows`` is empty for FITS tables.
    """

    path: str
    size: int
    mtime_ns: int
    num_rows: int
    row_group_rows: tuple[int, ...]  # rows in each row group, in order
    schema_index: int = 0  # which of CatalogSource.schemas this file has
    pixel_order: int = -1  # HATS pixel (order, index), -1 when not HATS
    pixel: int = -1

    @property
    def where(self) -> str:
        """The file, with its HATS pixel where it has one (for messages)."""
        return f"{self.path} (pixel Norder={self.pixel_order} Npix={self.pixel})" if self.pixel_order >= 0 else self.path


@dataclass(frozen=True)
class CatalogSource:
    """A catalog's files (in a deterministic order) and what they share.

    ``schema`` is the reference schema profiles are resolved against (the first file's, or a HATS
    catalog's ``_common_metadata``); ``schemas`` are the distinct schemas of all files, so a
    check costs O(distinct schemas), not O(files). ``units`` maps column names to the unit
    string the files record (Parquet field metadata, astropy's table metadata, FITS ``TUNIT``);
    ``unit_conflicts`` the columns whose files record different units (checked for used columns only).
    ``extra_fingerprint`` are metadata files whose change means the catalog changed (HATS).
    """

    files: tuple[CatalogFile, ...]
    schema: pa.Schema
    form: CatalogForm = "parquet"
    schemas: tuple[pa.Schema, ...] = ()
    units: Mapping[str, str] = field(default_factory=dict)
    unit_conflicts: Mapping[str, str] = field(default_factory=dict)  # column → files that disagree
    root: str | None = None
    extra_fingerprint: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files)

    @property
    def num_rows(self) -> int:
        return sum(f.num_rows for f in self.files)

    @property
    def name(self) -> str:
        """How messages name the catalog: its root (HATS) or its first file."""
        return self.root or (self.files[0].path if len(self.files) == 1 else f"{self.files[0].path} (+{len(self.files) - 1} files)")

    def fingerprint(self) -> list[dict[str, object]]:
        """Path, size, mtime and row count of every file (and metadata file): what resume compares."""
        out: list[dict[str, object]] = [
            {"path": f.path, "size": f.size, "mtime_ns": f.mtime_ns, "num_rows": f.num_rows} for f in self.files
        ]
        for meta in self.extra_fingerprint:
            st = storage.stat(meta)
            out.append({"path": meta, "size": st.size, "mtime_ns": st.mtime_ns, "num_rows": 0})
        return out

    def check_columns(self, columns: Sequence[str], optional: Collection[str] = ()) -> None:
        """Every file has each of ``columns`` (``optional`` ones may be absent) with the reference type.

        Raises :class:`CatalogError` naming a file (and its HATS pixel) and the column.
        """
        for index, schema in enumerate(self.schemas or (self.schema,)):
            names = set(schema.names)
            for col in columns:
                ref = self.schema.field(col).type if col in self.schema.names else None
                if col not in names:
                    if col in optional:
                        continue
                    raise CatalogError(f"{self._file_with_schema(index)}: no column {col!r} "
                                       f"(every file of the catalog needs it)")
                typ = schema.field(col).type
                if ref is not None and typ != ref:
                    raise CatalogError(
                        f"{self._file_with_schema(index)}: column {col!r} has type {typ}, but "
                        f"{self._file_with_schema(0)} has {ref}; every file of a catalog must agree"
                    )

    def _file_with_schema(self, index: int) -> str:
        for f in self.files:
            if f.schema_index == index:
                return f.where
        return self.name


def check_catalog_rows(source: CatalogSource, spec: object) -> CatalogSource:
    """``source`` unless it has no rows (then a CatalogError naming it)."""
    if source.num_rows == 0:
        where = source.files[0].path if len(source.files) == 1 else f"{len(source.files)} files under {spec}"
        raise CatalogError(f"{where}: the catalog has no rows")
    return source


def distinct_schemas(schemas: Sequence[pa.Schema]) -> tuple[tuple[pa.Schema, ...], list[int]]:
    """The distinct schemas (ignoring schema-level metadata such as pandas' index ranges) and,
    for each input, the index of its distinct schema."""
    seen: dict[bytes, int] = {}
    unique: list[pa.Schema] = []
    index: list[int] = []
    for schema in schemas:
        key = schema.remove_metadata().serialize().to_pybytes()
        if key not in seen:
            seen[key] = len(unique)
            unique.append(schema)
        index.append(seen[key])
    return tuple(unique), index
