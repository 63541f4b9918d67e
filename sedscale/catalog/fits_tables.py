"""FITS binary tables as sedscale input (e.g. Euclid's per-tile MER catalogues), read with astropy.

Opening reads headers only: the first binary-table HDU's column names, formats (``TFORMn``),
units (``TUNITn``) and row count (``NAXIS2``). Reading a partition seeks to its rows and reads them
in chunks of :data:`CHUNK_ROWS` with plain reads, keeping just the projected columns, so memory is
bounded by the partition's output, not the file. Integer columns stay integers: a 64-bit ``K`` id column becomes int64 (reading
through a float — as ``QTable`` can — loses digits of Euclid's 19-digit ids). ``TNULLn`` values of
integer columns become nulls; unsigned columns stored with ``TZERO`` come back as their true
values (``TZERO``/``TSCAL`` applied as the FITS standard says).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Iterator, Sequence

import numpy as np
import pyarrow as pa

from sedscale.catalog import storage
from sedscale.catalog.parquet_files import expand
from sedscale.catalog.partition import Partition
from sedscale.catalog.units_metadata import merge_units
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
    recorded: list[tuple[str, dict[str, str]]] = []
    for location in locations:
        with _open(location) as hdul:
            hdu = _table_hdu(hdul, location)
            schema, file_units = _schema_and_units(hdu, location)
            n_rows = int(hdu.header.get("NAXIS2", 0))
        st = storage.stat(location)
        files.append(CatalogFile(location, st.size, st.mtime_ns, n_rows, ()))
        schemas.append(schema)
        recorded.append((location, file_units))
    units, conflicts = merge_units(recorded)
    unique, index = distinct_schemas(schemas)
    files = [CatalogFile(f.path, f.size, f.mtime_ns, f.num_rows, (), schema_index=i) for f, i in zip(files, index)]
    return check_catalog_rows(CatalogSource(tuple(files), unique[0], "fits", unique, units, conflicts), path)


#: Rows decoded at a time: bounds the memory of a read to CHUNK_ROWS × the row's width in bytes,
#: however wide the table (IRSA's 1,594 columns: ~1e4 bytes a row, ~40 MB a chunk).
CHUNK_ROWS = 4_096


@dataclass(frozen=True)
class _TableLayout:
    """Where a binary table's rows lie in its file, and how a row is laid out on disk."""

    data_offset: int
    row_bytes: int
    n_rows: int
    disk_dtype: np.dtype[Any]  # big-endian record of one row
    columns: dict[str, Any]  # name → astropy Column (format, TNULL, TZERO, TSCAL)


def _layout(location: str) -> _TableLayout:
    with _open(location) as hdul:
        hdu = _table_hdu(hdul, location)
        row_bytes = int(hdu.header["NAXIS1"])
        dtype = np.dtype(hdu.columns.dtype).newbyteorder(">")
        if dtype.itemsize != row_bytes:
            raise CatalogError(f"{location}: the table's row layout ({dtype.itemsize} bytes) does not match NAXIS1 "
                               f"({row_bytes}); variable-length or bit columns are not supported")
        return _TableLayout(int(hdu.fileinfo()["datLoc"]), row_bytes, int(hdu.header.get("NAXIS2", 0)), dtype,
                            {c.name: c for c in hdu.columns})


def _open_bytes(location: str) -> Any:
    if storage.is_remote(location):
        return storage.fsspec_filesystem(location).open(storage.fs_path(location), "rb")
    return open(location, "rb")


def _iter_records(location: str, layout: _TableLayout, start: int, stop: int,
                  chunk_rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """The rows ``[start, stop)`` as on-disk records, CHUNK_ROWS at a time (plain reads, no map:
    a memory map kept every page read resident — peak RSS grew 2.3× from 10^6 to 10^7 rows)."""
    with _open_bytes(location) as fh:
        for a in range(start, stop, chunk_rows):
            b = min(stop, a + chunk_rows)
            fh.seek(layout.data_offset + a * layout.row_bytes)
            buf = fh.read((b - a) * layout.row_bytes)
            if len(buf) != (b - a) * layout.row_bytes:
                raise CatalogError(f"{location}: rows {a}..{b} lie past the end of the file (truncated?)")
            yield np.frombuffer(buf, dtype=layout.disk_dtype)


def _decode(values: np.ndarray, column: Any) -> pa.Array:
    """One column's on-disk values as Arrow: native byte order, TZERO/TSCAL applied, TNULL → null."""
    if str(column.format).lstrip("0123456789") == "L":
        raw = values.view(np.uint8)
        return pa.array(raw == ord("T"), mask=raw == 0)
    if values.dtype.kind == "S":
        return pa.array(np.char.decode(np.char.rstrip(values), "ascii", "replace").astype(object), pa.string())
    native = values.astype(values.dtype.newbyteorder("="))
    mask = native == int(column.null) if column.null is not None and native.dtype.kind in "iu" else None
    bzero, bscale = column.bzero, column.bscale
    if native.dtype.kind == "i" and bzero and not bscale and int(bzero) == 1 << (8 * native.dtype.itemsize - 1):
        unsigned = native.view(native.dtype.str.replace("i", "u"))
        return pa.array(unsigned ^ np.array(int(bzero), dtype=unsigned.dtype), mask=mask)
    if bzero or bscale:
        native = native * float(bscale or 1.0) + float(bzero or 0.0)
    return pa.array(native, mask=mask)


def read_fits_rows(partition: Partition, columns: Sequence[str], optional: Collection[str] = ()) -> pa.Table:
    """Rows ``[row_start, row_stop)`` of a FITS table's ``columns`` (absent optional ones all-null)."""
    location = partition.file
    layout = _layout(location)
    missing = [c for c in columns if c not in layout.columns and c not in optional]
    if missing:
        raise CatalogError(f"{location}: no column {missing[0]!r}")
    present = [c for c in columns if c in layout.columns]
    pieces: dict[str, list[pa.Array]] = {c: [] for c in present}
    for records in _iter_records(location, layout, partition.row_start, partition.row_stop):
        for name in present:
            pieces[name].append(_decode(records[name], layout.columns[name]))
    arrays = [pa.chunked_array(pieces[c]) if c in pieces else pa.chunked_array([pa.nulls(partition.n_rows, pa.float64())])
              for c in columns]
    return pa.Table.from_arrays(arrays, names=list(columns))


def iter_fits_column(location: str, column: str, batch_rows: int) -> Iterator[pa.Array]:
    """One column of a FITS table in batches (the duplicate-id scan), bounded memory."""
    layout = _layout(location)
    if column not in layout.columns:
        raise CatalogError(f"{location}: no column {column!r}")
    for records in _iter_records(location, layout, 0, layout.n_rows, min(batch_rows, CHUNK_ROWS)):
        yield _decode(records[column], layout.columns[column])
