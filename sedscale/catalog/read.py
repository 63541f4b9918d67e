"""Reading one partition's rows: only its row groups (or row range), only the projected columns.

Parquet (flat or HATS pixel files, local or remote) is read through pyarrow over the file system
:mod:`sedscale.catalog.storage` gives; FITS through :mod:`sedscale.catalog.fits_tables`.
``optional`` columns (bands a profile marks ``optional: true``, absent from some files — Euclid's
external bands vary by field) come back as all-null float64 columns where the file lacks them, so
the validation sees "not observed" rather than a file fault.
"""

from __future__ import annotations

from typing import Collection, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.catalog import storage
from sedscale.catalog.fits_tables import iter_fits_column, read_fits_rows
from sedscale.catalog.partition import Partition
from sedscale.errors import CatalogError


def _where(partition: Partition) -> str:
    if partition.has_pixel:
        return f"{partition.file} (HATS pixel Norder={partition.pixel_order} Npix={partition.pixel})"
    return partition.file


def read_partition(partition: Partition, columns: Sequence[str], optional: Collection[str] = ()) -> pa.Table:
    """The rows ``[row_start, row_stop)`` of the partition's file, with ``columns`` only (in order)."""
    if partition.form == "fits":
        return read_fits_rows(partition, columns, optional)
    fs, inner = storage.arrow_filesystem(partition.file)
    try:
        with fs.open_input_file(inner) as fh:
            pf = pq.ParquetFile(fh, pre_buffer=False)
            present = set(pf.schema_arrow.names)
            missing = [c for c in columns if c not in present and c not in optional]
            if missing:
                raise CatalogError(f"{_where(partition)}: no column {missing[0]!r}")
            wanted = [c for c in columns if c in present]
            table = pf.read_row_groups(list(partition.row_groups), columns=wanted)
    except CatalogError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{_where(partition)}: cannot read row groups {list(partition.row_groups)} "
                           f"(truncated or corrupt?): {exc}") from exc
    table = table.slice(partition.row_start - partition.rg_offset, partition.n_rows)
    return _with_missing(table, columns)


def iter_column(form: str, location: str, column: str, batch_rows: int = 1 << 17) -> Iterator[pa.Array]:
    """One column of a whole file, in batches (the duplicate-id scan); bounded memory either form."""
    if form == "fits":
        yield from iter_fits_column(location, column, batch_rows)
        return
    fs, inner = storage.arrow_filesystem(location)
    try:
        with fs.open_input_file(inner) as fh:
            # pre_buffer off: with it, Arrow keeps every column chunk it read for the life of the
            # reader, so the scan's memory grew with the file (+70 MB at 10^7 rows)
            pf = pq.ParquetFile(fh, pre_buffer=False)
            for batch in pf.iter_batches(columns=[column], batch_size=batch_rows):
                yield batch.column(0)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{location}: cannot read column {column!r} (truncated or corrupt?): {exc}") from exc


def _with_missing(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``table`` with every name of ``columns`` in order, absent (optional) ones all-null float64."""
    if list(table.column_names) == list(columns):
        return table
    arrays = [table.column(c) if c in table.column_names else pa.nulls(table.num_rows, pa.float64())
              for c in columns]
    return pa.Table.from_arrays(arrays, names=list(columns))
