"""``sedscale.open_results(DIR)``: a campaign's results as an xarray Dataset of 1-D variables.

Why a function and not the store itself: ``results.zarr`` stays three 2-D arrays padded to
``chunk_rows`` rows per partition (:mod:`sedscale.campaign.store`) because a commit must own its
chunk files alone — one chunk per partition, so no two partitions (possibly retried, possibly on
two nodes at once) ever write the same object, and a partition is all-or-nothing. Zarr chunks are
regular, and partitions are not (a HATS pixel, a file's tail), so a 1-D array along the sources
either shares chunks between partitions or holds padding. This module hides the padding instead:

- one variable per results column along the ``source`` dimension, the input id as the
  ``source_id`` coordinate (not indexed, so opening stays lazy; ``ds.set_xindex("source_id")``
  selects by id), dask-backed with one chunk per committed partition, nothing read until asked;
- units (``attrs["units"]``, astropy strings from :data:`sedscale.results.RESULT_UNITS`),
  ``long_name``, CF ``_FillValue`` for integer columns that can be null (floats use NaN), flags
  as bytes with ``flag_values``/``flag_meanings``; global ``Conventions``, ``title``, ``source``,
  ``history``;
- only committed partitions: an incomplete campaign is refused, as ``sedscale export`` refuses it,
  unless ``allow_partial=True`` (then the sources of uncommitted partitions are simply absent).

``gpu_seconds`` is the committed value: GPU time is attributed to sources by ``sedscale export``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from sedscale._version import __version__
from sedscale.campaign import paths as P
from sedscale.campaign.committed import refuse_incomplete
from sedscale.campaign.meta import read_meta
from sedscale.campaign.paths import CampaignPaths
from sedscale.campaign.resume import Verify, plan_resume
from sedscale.campaign.store import LAYOUT, NULLMASK
from sedscale.results import RESULT_DESCRIPTIONS, RESULTS_SCHEMA, result_unit

if TYPE_CHECKING:
    import dask.array as da
    import xarray as xr

SOURCE_DIM = "source"
CONVENTIONS = "CF-1.10"
#: CF / netCDF default fill values for the integer types a results column can have.
FILL_INT64 = np.int64(-9223372036854775806)
FILL_INT32 = np.int32(-2147483647)
FILL_FLAG = np.int8(-127)
_COLUMN_ARRAY = {name: array for array in P.DATA_ARRAYS for name in LAYOUT.columns(array)}


def _committed_spans(root: Path, allow_partial: bool, verify: Verify) -> tuple[CampaignPaths, list[tuple[int, int]]]:
    """``(partition id, rows)`` of every committed partition, in id order (refusing an incomplete
    campaign unless ``allow_partial``)."""
    paths = CampaignPaths.at(root)
    meta = read_meta(paths)
    plan = plan_resume(paths, meta.n_partitions, verify=verify)
    if not allow_partial:
        refuse_incomplete(paths, plan, meta.n_partitions)
    committed = sorted(plan.done + plan.failed)  # a failed partition committed its rows as failed
    return paths, [(pid, plan.markers[pid].n_rows) for pid in committed]


def _real_rows(raw: xr.Dataset, spans: list[tuple[int, int]], chunk_rows: int) -> dict[str, da.Array]:
    """Each 2-D data array with the padding cut out: one dask chunk per committed partition."""
    import dask.array as da

    out = {}
    for array in P.DATA_ARRAYS:
        data = raw[array].data
        pieces = [data[pid * chunk_rows: pid * chunk_rows + n] for pid, n in spans if n]
        # dask ships no annotations for concatenate / map_blocks (strict mypy: untyped call)
        out[array] = da.concatenate(pieces, axis=0) if pieces else data[:0]  # type: ignore[no-untyped-call]
    return out


def _text_or_none(text: np.ndarray, is_null: np.ndarray) -> np.ndarray:
    """``text`` with None where the null mask says the value was null."""
    out = text.astype(object)
    out[is_null] = None
    return out


def _column(rows: dict[str, da.Array], null_bits: da.Array, bit: int, field: pa.Field) -> xr.Variable:
    """One results column as a CF-annotated 1-D variable (nulls: NaN, ``_FillValue`` or None)."""
    import dask.array as da
    import xarray as xr

    array = _COLUMN_ARRAY[field.name]
    values = rows[array][:, LAYOUT.columns(array).index(field.name)]
    is_null = (null_bits >> bit) & 1 == 1
    attrs: dict[str, object] = {"long_name": RESULT_DESCRIPTIONS[field.name]}
    kind = field.type
    if pa.types.is_floating(kind):
        attrs["units"] = result_unit(field.name) or "1"
    elif pa.types.is_boolean(kind):
        values = da.where(is_null, FILL_FLAG, values.astype(np.int8))
        attrs.update(_FillValue=FILL_FLAG, flag_values=np.array([0, 1], np.int8), flag_meanings="false true")
    elif pa.types.is_integer(kind):
        fill = FILL_INT32 if kind.bit_width <= 32 else FILL_INT64
        values = da.where(is_null, fill, values.astype(fill.dtype))
        attrs["_FillValue"] = fill
        if field.name != "source_id":
            attrs["units"] = "1"
    else:  # text: None where null (the store keeps "" there, told apart by the null mask)
        values = da.map_blocks(_text_or_none, values, is_null, dtype=object)  # type: ignore[no-untyped-call]
    return xr.Variable((SOURCE_DIM,), values, attrs=attrs)


def open_results(root: str | Path, *, allow_partial: bool = False, verify: Verify = "size") -> xr.Dataset:
    """The results of the campaign at ``root``: one lazy 1-D variable per results column along
    ``source``, ``source_id`` as coordinate, units and CF attributes, no padding.

    ``verify`` checks each committed partition's chunk files against its done-marker before they
    are trusted (``size`` by default: a stat per file; ``checksum`` reads them all once).
    """
    import xarray as xr

    paths, spans = _committed_spans(Path(root), allow_partial, verify)
    raw = xr.open_zarr(str(paths.results_zarr), chunks={})
    chunk_rows = int(raw.attrs["chunk_rows"])
    rows = _real_rows(raw, spans, chunk_rows)
    null_bits = rows[P.INT_ARRAY][:, LAYOUT.ints.index(NULLMASK)]
    variables = {field.name: _column(rows, null_bits, bit, field) for bit, field in enumerate(RESULTS_SCHEMA)}
    source_id = variables.pop("source_id")
    n_committed = len(spans)
    return xr.Dataset(
        variables,
        coords={"source_id": source_id},
        attrs={
            "Conventions": CONVENTIONS,
            "title": f"sedscale results of campaign {paths.root.name}",
            "source": f"sedscale {__version__}",
            "history": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} sedscale.open_results({paths.root})",
            "campaign": str(paths.root),
            "partitions_committed": n_committed,
            "partitions_total": int(raw.attrs["n_partitions"]),
            "comment": "units are astropy unit strings; gpu_seconds as committed (sedscale export "
                       "attributes GPU time to sources)",
        },
    )
