"""FITS binary tables as sedscale input (e.g. Euclid's per-tile MER catalogues), read with astropy.

Opening reads headers only: the first binary-table HDU's column names, formats (``TFORMn``),
units (``TUNITn``) and row count (``NAXIS2``). Reading a partition maps the file (``memmap``) and
copies just its row range of just the projected columns, so memory is bounded by the partition,
not the file. Integer columns stay integers: a 64-bit ``K`` id column becomes int64 (reading
through a float — as ``QTable`` can — loses digits of Euclid's 19-digit ids). ``TNULLn`` values of
integer columns become nulls; unsigned columns stored with ``TZERO`` come back as their true
values (astropy applies ``TZERO``/``TSCAL``).
"""

from __future__ import annotations

from typing import Any, Collection, Iterator, Sequence

import numpy as np
import pyarrow as pa

from sedscale.catalog import storage
from sedscale.catalog.parquet_files import expand
from sedscale.catalog.partition import Partition
from sedscale.catalog.source import (
    FITS_SUFFIXES,
    CatalogFile,
    CatalogPath,
    CatalogSource,
    check_catalog_rows,
    distinct_schemas,
)
from sedscale.errors import CatalogError

_FORMAT_TYPES: dict[str, pa.DataType] = {
    "K": pa.int64(), "J": pa.int32(), "I": pa.int16(), "B": pa.uint8(), "L": pa.bool_(),
    "E": pa.float32(), "D": pa.float64(), "A": pa.string(),
}


def _open(location: str) -> Any:
    from astropy.io import fits

    try:
        if storage.is_remote(location):
            return fits.open(location, use_fsspec=True, fsspec_kwargs=storage.storage_options(location),
                             lazy_load_hdus=True)
        return fits.open(location, memmap=True, lazy_load_hdus=True)
    except (OSError, ValueError, TypeError) as exc:
        raise CatalogError(f"{location}: not a readable FITS file (truncated or corrupt?): {exc}") from exc


def _table_hdu(hdul: Any, location: str) -> Any:
    from astropy.io import fits

    for hdu in hdul:
        if isinstance(hdu, fits.BinTableHDU):
            return hdu
    raise CatalogError(f"{location}: no binary table HDU (sedscale reads the first BINTABLE extension)")


def _arrow_type(fmt: Any, location: str, name: str) -> pa.DataType:
    code = str(fmt.format) if hasattr(fmt, "format") else str(fmt)
    repeat = getattr(fmt, "repeat", 1)
    letter = code.lstrip("0123456789")[:1]
    if letter == "A":
        return pa.string()
    if repeat != 1:
        return pa.list_(_FORMAT_TYPES.get(letter, pa.float64()))
    if letter not in _FORMAT_TYPES:
        raise CatalogError(f"{location}: column {name!r} has FITS format {code}, which sedscale cannot read")
    return _FORMAT_TYPES[letter]


def _schema_and_units(hdu: Any, location: str) -> tuple[pa.Schema, dict[str, str]]:
    fields, units = [], {}
    for col in hdu.columns:
        typ = _arrow_type(col.format, location, col.name)
        if col.bzero and typ in (pa.int16(), pa.int32(), pa.int64()):
            typ = {pa.int16(): pa.uint16(), pa.int32(): pa.uint32(), pa.int64(): pa.uint64()}[typ]
        fields.append(pa.field(col.name, typ))
        if col.unit:
            units[col.name] = str(col.unit).strip()
    return pa.schema(fields), units


def open_fits(path: CatalogPath) -> CatalogSource:
    """Open one or many FITS tables (a file, a directory of them, a glob)."""
    locations = expand(path, FITS_SUFFIXES, "FITS (*.fits)")
    files: list[CatalogFile] = []
    schemas: list[pa.Schema] = []
    units: dict[str, str] = {}
    for location in locations:
        with _open(location) as hdul:
            hdu = _table_hdu(hdul, location)
            schema, file_units = _schema_and_units(hdu, location)
            n_rows = int(hdu.header.get("NAXIS2", 0))
        st = storage.stat(location)
        files.append(CatalogFile(location, st.size, st.mtime_ns, n_rows, ()))
        schemas.append(schema)
        for name, unit in file_units.items():
            if units.setdefault(name, unit) != unit:
                raise CatalogError(f"{location}: column {name!r} has TUNIT {unit!r}, but another file of the "
                                   f"catalog says {units[name]!r}; every file must agree")
    unique, index = distinct_schemas(schemas)
    files = [CatalogFile(f.path, f.size, f.mtime_ns, f.num_rows, (), schema_index=i) for f, i in zip(files, index)]
    return check_catalog_rows(CatalogSource(tuple(files), unique[0], "fits", unique, units), path)


def _column_array(values: np.ndarray, null_value: Any) -> pa.Array:
    if values.dtype.kind == "S":
        return pa.array(np.char.decode(np.char.rstrip(values), "ascii", "replace").astype(object), pa.string())
    native = values.astype(values.dtype.newbyteorder("="), copy=False)
    mask = None
    if null_value is not None and native.dtype.kind in "iu":
        mask = native == int(null_value)
    return pa.array(native, mask=mask)


def read_fits_rows(partition: Partition, columns: Sequence[str], optional: Collection[str] = ()) -> pa.Table:
    """Rows ``[row_start, row_stop)`` of a FITS table's ``columns`` (absent optional ones all-null)."""
    location = partition.file
    with _open(location) as hdul:
        hdu = _table_hdu(hdul, location)
        present = {c.name: c for c in hdu.columns}
        try:
            rows = hdu.data[partition.row_start:partition.row_stop]
            arrays, names = [], []
            for name in columns:
                if name not in present:
                    if name in optional:
                        arrays.append(pa.nulls(partition.n_rows, pa.float64()))
                        names.append(name)
                        continue
                    raise CatalogError(f"{location}: no column {name!r}")
                arrays.append(_column_array(np.asarray(rows[name]), present[name].null))
                names.append(name)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise CatalogError(f"{location}: cannot read rows {partition.row_start}..{partition.row_stop}: {exc}") from exc
    return pa.Table.from_arrays(arrays, names=names)


def iter_fits_column(location: str, column: str, batch_rows: int) -> Iterator[pa.Array]:
    """One column of a FITS table in batches of ``batch_rows`` (memory-mapped: bounded memory)."""
    with _open(location) as hdul:
        hdu = _table_hdu(hdul, location)
        names = {c.name: c for c in hdu.columns}
        if column not in names:
            raise CatalogError(f"{location}: no column {column!r}")
        n = int(hdu.header.get("NAXIS2", 0))
        for start in range(0, n, batch_rows):
            yield _column_array(np.asarray(hdu.data[start:start + batch_rows][column]), names[column].null)
