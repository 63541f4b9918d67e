"""``sedscale export --format fits``: the results as one FITS binary table (TOPCAT, astropy).

The table is streamed: its header (row count from the manifest, column formats, ``TUNIT`` from
:data:`sedscale.results.RESULT_UNITS`, ``TCOMM`` descriptions, ``TNULL`` for integers) is written
first through astropy's ``StreamingHDU``, then each partition's rows as big-endian records, so
memory stays one partition. FITS text columns have a fixed width, so a first pass reads the text
columns only (through :func:`sedscale.campaign.results_dataset.open_results`, one partition's
strings at a time) to size them; text is written as ASCII (other characters escaped).

Nulls: floats are NaN (FITS has no other null for floats); integer columns carry ``TNULLn`` (the
type's smallest value); ``accepted`` is a FITS logical, whose null is a zero byte. ``source_id``
stays a 64-bit integer (``K``), so ids survive exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from sedscale._version import __version__
from sedscale.campaign.committed import CommittedResults
from sedscale.campaign.results_dataset import open_results
from sedscale.fsutil import atomic_output
from sedscale.results import RESULT_DESCRIPTIONS, RESULTS_SCHEMA, result_unit

if TYPE_CHECKING:
    from astropy.io import fits

EXTNAME = "RESULTS"
#: ``TNULL`` of each integer width: the smallest value, which no count or id takes.
TNULL = {64: np.iinfo(np.int64).min, 32: np.iinfo(np.int32).min}
_LOGICAL = {True: ord("T"), False: ord("F")}


def fits_text(value: str) -> bytes:
    """``value`` as the ASCII bytes a FITS character column may hold."""
    return value.encode("ascii", errors="backslashreplace")


def _text_widths(results: CommittedResults) -> dict[str, int]:
    """The widest value (in FITS bytes, at least 1) of each text column, one partition at a time."""
    text = [f.name for f in RESULTS_SCHEMA if pa.types.is_string(f.type)]
    dataset = open_results(results.paths.root, verify="none")
    widths = dict.fromkeys(text, 1)
    for name in text:
        for block in dataset[name].data.to_delayed().ravel():
            values = block.compute()
            widths[name] = max([widths[name], *(len(fits_text(v)) for v in values if v)])
    return widths


def _format(field: pa.Field, widths: dict[str, int]) -> tuple[str, str]:
    """``(TFORM, numpy big-endian dtype)`` of one results column."""
    kind = field.type
    if pa.types.is_floating(kind):
        return "D", ">f8"
    if pa.types.is_boolean(kind):
        return "L", "i1"
    if pa.types.is_integer(kind):
        return ("K", ">i8") if kind.bit_width > 32 else ("J", ">i4")
    return f"{widths[field.name]}A", f"S{widths[field.name]}"


def _header(widths: dict[str, int], n_rows: int) -> fits.Header:
    """The binary-table header of the whole export (astropy builds the mandatory keywords)."""
    from astropy.io import fits

    columns = []
    for field in RESULTS_SCHEMA:
        tform, _ = _format(field, widths)
        bits = field.type.bit_width if pa.types.is_integer(field.type) else 0
        columns.append(fits.Column(name=field.name, format=tform, unit=result_unit(field.name) or None,
                                   null=TNULL.get(bits)))
    header = fits.BinTableHDU.from_columns(columns, nrows=0).header
    header["NAXIS2"] = n_rows
    header["EXTNAME"] = EXTNAME
    for i, field in enumerate(RESULTS_SCHEMA, start=1):
        header[f"TCOMM{i}"] = RESULT_DESCRIPTIONS[field.name]
    header["ORIGIN"] = f"sedscale {__version__}"
    return header


def records(table: pa.Table, widths: dict[str, int]) -> np.ndarray:
    """One partition's results as FITS binary-table records (big-endian, packed)."""
    dtype = np.dtype([(f.name, _format(f, widths)[1]) for f in RESULTS_SCHEMA])
    out = np.zeros(table.num_rows, dtype=dtype)
    for field in RESULTS_SCHEMA:
        column = table.column(field.name)
        kind = field.type
        if pa.types.is_floating(kind):
            out[field.name] = column.to_numpy(zero_copy_only=False)
        elif pa.types.is_boolean(kind):
            out[field.name] = [_LOGICAL[v] if v is not None else 0 for v in column.to_pylist()]
        elif pa.types.is_integer(kind):
            out[field.name] = column.fill_null(int(TNULL[kind.bit_width])).to_numpy(zero_copy_only=False)
        else:
            out[field.name] = [fits_text(v) for v in column.fill_null("").to_pylist()]
    return out


def write_fits(results: CommittedResults, out: Path) -> int:
    """Write ``out`` (a primary HDU, then the results table); returns the number of rows."""
    from astropy.io import fits

    widths = _text_widths(results)
    header = _header(widths, results.n_rows)
    rows = 0
    with atomic_output(out) as tmp:
        stream = fits.StreamingHDU(tmp, header)
        try:
            for _, table in results.tables():
                if table.num_rows:
                    stream.write(records(table, widths).view(np.uint8))
                rows += table.num_rows
        finally:
            stream.close()
    return rows
