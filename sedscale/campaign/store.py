"""The campaign's Zarr v3 results store: three 2-D arrays, one chunk per partition in each.

Why this layout: Lustre suffers from millions of small files, so a partition owns exactly three
chunk files (``floats``, ``ints``, ``strings``; rows x columns) plus its done-marker — four files
however many columns the results contract grows to. Rows of partition ``p`` occupy
``[p * chunk_rows, p * chunk_rows + n_rows)``; the tail of each chunk is padding (``_present`` = 0),
which keeps chunks regular (one partition = one chunk, so no two partitions ever write the same
object) at the cost of a little compressed padding in short partitions.

Columns come from :data:`sedscale.results.RESULTS_SCHEMA`: floating point fields go to ``floats``,
integer and boolean fields to ``ints`` (int64), string fields to ``strings`` (variable-length
UTF-8). Nulls are exact: the ``_nullmask`` int column holds one bit per schema field. Each data
array has a coordinate array naming its columns, so ``xarray.open_zarr(store).floats.sel(
float_column="logmstar")`` works; :func:`open_results_dataset` gives one variable per column, and
:func:`sedscale.open_results` the 1-D view without padding that users read
(:mod:`sedscale.campaign.results_dataset` says why the store itself stays 2-D).

A partition's chunks are *encoded* here (into bytes, through zarr's own codec pipeline on an
in-memory store) and *placed* on disk by :mod:`sedscale.campaign.commit`, which owns atomicity.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, MutableMapping

import numpy as np
import pyarrow as pa

from sedscale.campaign import paths as P
from sedscale.errors import CampaignError
from sedscale.results import RESULTS_SCHEMA

if TYPE_CHECKING:
    import xarray as xr
    import zarr
    from zarr.abc.buffer import Buffer
    from zarr.types import AnyArray

LAYOUT_VERSION = 1
NULLMASK = "_nullmask"
PRESENT = "_present"
_KEY_ENCODING = {"name": "default", "separator": "."}


@dataclass(frozen=True)
class ColumnLayout:
    """Which array and column index holds each results field (derived from the schema)."""

    floats: tuple[str, ...]
    ints: tuple[str, ...]  # schema int/bool fields, then NULLMASK, PRESENT
    strings: tuple[str, ...]

    @classmethod
    def from_schema(cls, schema: pa.Schema = RESULTS_SCHEMA) -> "ColumnLayout":
        floats, ints, strings = [], [], []
        for field in schema:
            t = field.type
            if pa.types.is_floating(t):
                floats.append(field.name)
            elif pa.types.is_integer(t) or pa.types.is_boolean(t):
                ints.append(field.name)
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                strings.append(field.name)
            else:  # pragma: no cover - guards future schema edits
                raise TypeError(f"results field {field.name!r} has unsupported type {t}")
        if len(schema) > 62:  # pragma: no cover
            raise TypeError("the null mask holds at most 62 fields")
        return cls(tuple(floats), tuple(ints) + (NULLMASK, PRESENT), tuple(strings))

    def columns(self, array: str) -> tuple[str, ...]:
        return {P.FLOAT_ARRAY: self.floats, P.INT_ARRAY: self.ints, P.STRING_ARRAY: self.strings}[array]


LAYOUT = ColumnLayout.from_schema()
_ARRAY_DTYPES: dict[str, Any] = {P.FLOAT_ARRAY: "float64", P.INT_ARRAY: "int64", P.STRING_ARRAY: str}
_FILL: dict[str, Any] = {P.FLOAT_ARRAY: np.nan, P.INT_ARRAY: 0, P.STRING_ARRAY: ""}


def _array_kwargs(array: str, chunk_rows: int) -> dict[str, Any]:
    ncol = len(LAYOUT.columns(array))
    return dict(
        dtype=_ARRAY_DTYPES[array],
        chunks=(chunk_rows, ncol),
        fill_value=_FILL[array],
        chunk_key_encoding=_KEY_ENCODING,
        dimension_names=(P.ROW_DIM, P.COLUMN_COORDS[array]),
        config={"write_empty_chunks": True},
    )


def create_store(path: Path, n_partitions: int, chunk_rows: int) -> None:
    """Create the empty store (metadata only; written once at submit, never changed)."""
    import zarr

    group = zarr.open_group(str(path), mode="w-", zarr_format=3)
    group.attrs.update(
        {
            "sedscale_layout": LAYOUT_VERSION,
            "n_partitions": int(n_partitions),
            "chunk_rows": int(chunk_rows),
            "row_of_partition": "partition_id * chunk_rows + row_in_partition",
            "null_mask_column": NULLMASK,
            "present_column": PRESENT,
            "columns": {a: list(LAYOUT.columns(a)) for a in P.DATA_ARRAYS},
            "note": "done-markers under ../state/done say which partitions are committed; "
            "use sedscale export or sedscale.campaign.store.open_results_dataset",
        }
    )
    for array in P.DATA_ARRAYS:
        cols = LAYOUT.columns(array)
        group.create_array(array, shape=(n_partitions * chunk_rows, len(cols)), **_array_kwargs(array, chunk_rows))
        coord = group.create_array(
            P.COLUMN_COORDS[array], shape=(len(cols),), chunks=(len(cols),), dtype=str,
            dimension_names=(P.COLUMN_COORDS[array],),
        )
        coord[:] = np.array(cols, dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "consolidated metadata is not part of the v3 spec"
        zarr.consolidate_metadata(str(path))


def store_geometry(path: Path) -> tuple[int, int]:
    """``(n_partitions, chunk_rows)`` of an existing store, from its group metadata."""
    doc = json.loads((path / "zarr.json").read_text())
    attrs = doc.get("attributes", {})
    if attrs.get("sedscale_layout") != LAYOUT_VERSION:
        raise CampaignError(f"{path}: not a sedscale results store of layout {LAYOUT_VERSION}")
    return int(attrs["n_partitions"]), int(attrs["chunk_rows"])


# --- encoding one partition ------------------------------------------------------------------


@dataclass(frozen=True)
class _Staging:
    """One-chunk in-memory arrays with the store's codecs, over a dict this module owns.

    Encoding a chunk is position-free, so writing a block into the one-chunk array and reading the
    bytes zarr stored for it (through ``MemoryStore(store_dict=...)``, a public constructor, and
    the array's own chunk-key encoding) gives exactly the bytes of the campaign store's chunk.
    """

    arrays: dict[str, AnyArray]
    chunks: MutableMapping[str, Buffer]

    def encode(self, array: str, block: np.ndarray) -> bytes:
        target = self.arrays[array]
        target[:, :] = block
        return self.chunks[f"{array}/{target.metadata.encode_chunk_key((0, 0))}"].to_bytes()


@lru_cache(maxsize=8)
def _staging(chunk_rows: int) -> _Staging:
    import zarr
    from zarr.storage import MemoryStore

    chunks: dict[str, Buffer] = {}
    group = zarr.open_group(MemoryStore(store_dict=chunks), mode="w", zarr_format=3)
    arrays = {a: group.create_array(a, shape=(chunk_rows, len(LAYOUT.columns(a))), **_array_kwargs(a, chunk_rows))
              for a in P.DATA_ARRAYS}
    return _Staging(arrays, chunks)


def table_to_blocks(table: pa.Table, chunk_rows: int) -> dict[str, np.ndarray]:
    """Dense (chunk_rows x ncol) blocks of one partition's results, padded, nulls in the mask."""
    n = table.num_rows
    if n > chunk_rows:
        raise ValueError(f"partition has {n} rows but chunks hold {chunk_rows}")
    table = table.select(list(RESULTS_SCHEMA.names)).cast(RESULTS_SCHEMA)
    field_bit = {name: i for i, name in enumerate(RESULTS_SCHEMA.names)}
    floats = np.full((chunk_rows, len(LAYOUT.floats)), np.nan)
    ints = np.zeros((chunk_rows, len(LAYOUT.ints)), dtype=np.int64)
    strings = np.full((chunk_rows, len(LAYOUT.strings)), "", dtype=object)
    nullmask = np.zeros(n, dtype=np.int64)
    for name in RESULTS_SCHEMA.names:
        col = table.column(name)
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        nullmask |= np.where(valid, 0, 1 << field_bit[name]).astype(np.int64)
        if name in LAYOUT.floats:
            floats[:n, LAYOUT.floats.index(name)] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        elif name in LAYOUT.strings:
            strings[:n, LAYOUT.strings.index(name)] = col.fill_null("").to_numpy(zero_copy_only=False)
        else:
            ints[:n, LAYOUT.ints.index(name)] = col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    ints[:n, LAYOUT.ints.index(NULLMASK)] = nullmask
    ints[:n, LAYOUT.ints.index(PRESENT)] = 1
    return {P.FLOAT_ARRAY: floats, P.INT_ARRAY: ints, P.STRING_ARRAY: strings}


def encode_partition(table: pa.Table, chunk_rows: int) -> dict[str, bytes]:
    """The encoded chunk bytes of one partition, per array name, ready to be placed on disk."""
    staging = _staging(chunk_rows)
    return {array: staging.encode(array, block) for array, block in table_to_blocks(table, chunk_rows).items()}


# --- decoding --------------------------------------------------------------------------------


def blocks_to_table(blocks: dict[str, np.ndarray], n_rows: int) -> pa.Table:
    """Inverse of :func:`table_to_blocks` for the first ``n_rows`` rows."""
    ints = blocks[P.INT_ARRAY][:n_rows]
    nullmask = ints[:, LAYOUT.ints.index(NULLMASK)]
    arrays = []
    for i, field in enumerate(RESULTS_SCHEMA):
        mask = (nullmask >> i) & 1 == 1
        name = field.name
        if name in LAYOUT.floats:
            values: Any = blocks[P.FLOAT_ARRAY][:n_rows, LAYOUT.floats.index(name)].astype(np.float64)
        elif name in LAYOUT.strings:
            values = blocks[P.STRING_ARRAY][:n_rows, LAYOUT.strings.index(name)].astype(object)
        else:
            values = ints[:, LAYOUT.ints.index(name)]
            if pa.types.is_boolean(field.type):
                values = values.astype(bool)
        arrays.append(pa.array(values, type=field.type, mask=mask, from_pandas=False))
    return pa.Table.from_arrays(arrays, schema=RESULTS_SCHEMA)


def _data_array(group: zarr.Group, name: str) -> AnyArray:
    """``group[name]``, which must be an array (a store edited by hand could hold a group there)."""
    import zarr

    node = group[name]
    if not isinstance(node, zarr.Array):
        raise CampaignError(f"{group.store}: {name} is not an array")
    return node


class ResultsReader:
    """Reads committed partitions back from the store (export, tests)."""

    def __init__(self, path: Path) -> None:
        import zarr

        self.path = path
        self.n_partitions, self.chunk_rows = store_geometry(path)
        group = zarr.open_group(str(path), mode="r", zarr_format=3, use_consolidated=False)
        self._arrays = {a: _data_array(group, a) for a in P.DATA_ARRAYS}

    def read_partition(self, partition_id: int, n_rows: int) -> pa.Table:
        lo = partition_id * self.chunk_rows
        blocks = {a: np.asarray(arr[lo : lo + n_rows, :]) for a, arr in self._arrays.items()}
        present = blocks[P.INT_ARRAY][:, LAYOUT.ints.index(PRESENT)]
        if n_rows and not present.all():
            raise CampaignError(f"{self.path}: partition {partition_id} has {int(present.sum())} of {n_rows} rows")
        return blocks_to_table(blocks, n_rows)


def open_results_dataset(path: str | Path) -> "xr.Dataset":
    """The raw store as one (padded) variable per results column: padding rows included (select
    ``_present == 1``), null mask undecoded, done-markers not consulted — for inspecting the store
    itself. Users want :func:`sedscale.open_results` (1-D, no padding, units, committed only)."""
    import xarray as xr

    raw = xr.open_zarr(str(path))
    out = {}
    for array in P.DATA_ARRAYS:
        coord = P.COLUMN_COORDS[array]
        for name in LAYOUT.columns(array):
            out[name] = raw[array].sel({coord: name}, drop=True)
    return xr.Dataset(out, attrs=dict(raw.attrs))
