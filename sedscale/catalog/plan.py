"""Partition planning from metadata alone: which rows of which file each task fits.

A partition never spans two files — so never two HATS pixels — and is made of whole row groups
where possible (the cheapest unit to read); a row group larger than the target is split into even
row ranges. A FITS table has no row groups: it is cut into even row ranges. The plan reads only
metadata (:mod:`sedscale.catalog.source` already has it), keeps O(partitions) memory and is
deterministic: files in catalog order (path order; HATS pixel order), row groups in file order. The campaign layer stores the plan
(:mod:`sedscale.campaign.manifest` owns the manifest file); this module only makes it.
"""

from __future__ import annotations

import math
from typing import Iterator

from sedscale.catalog.partition import Partition
from sedscale.catalog.source import CatalogSource

DEFAULT_ROWS_PER_PARTITION = 50_000


def _file_partitions(row_group_rows: tuple[int, ...], target: int) -> Iterator[tuple[int, int, list[int], int]]:
    """(row_start, row_stop, row_groups, rg_offset) for one file."""
    cur_start, cur_rows, cur_offset = 0, 0, 0
    cur_groups: list[int] = []
    offset = 0
    for rg, n in enumerate(row_group_rows):
        if n == 0:
            offset += n
            continue
        if n > target:
            if cur_groups:
                yield cur_start, cur_start + cur_rows, cur_groups, cur_offset
                cur_groups, cur_rows = [], 0
            pieces = math.ceil(n / target)
            bounds = [offset + (n * k) // pieces for k in range(pieces + 1)]
            for a, b in zip(bounds[:-1], bounds[1:]):
                yield a, b, [rg], offset
            offset += n
            cur_start = offset
            continue
        if cur_groups and cur_rows + n > target:
            yield cur_start, cur_start + cur_rows, cur_groups, cur_offset
            cur_groups, cur_rows = [], 0
        if not cur_groups:
            cur_start, cur_offset = offset, offset
        cur_groups.append(rg)
        cur_rows += n
        offset += n
    if cur_groups:
        yield cur_start, cur_start + cur_rows, cur_groups, cur_offset


def plan_partitions(source: CatalogSource, rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION) -> list[Partition]:
    """The partitions of a catalog, ids dense from 0 in file and row order."""
    if rows_per_partition < 1:
        raise ValueError("rows_per_partition must be at least 1")
    plan: list[Partition] = []
    form = "fits" if source.form == "fits" else "parquet"
    for file_index, cf in enumerate(source.files):
        pieces = (_file_partitions(cf.row_group_rows, rows_per_partition) if form == "parquet"
                  else _range_partitions(cf.num_rows, rows_per_partition))
        for start, stop, groups, rg_offset in pieces:
            plan.append(Partition(partition_id=len(plan), file=cf.path, file_index=file_index,
                                  row_start=start, row_stop=stop, row_groups=tuple(groups), rg_offset=rg_offset,
                                  form=form, pixel_order=cf.pixel_order, pixel=cf.pixel))
    return plan


def _range_partitions(n_rows: int, target: int) -> Iterator[tuple[int, int, list[int], int]]:
    """Even row ranges of a file without row groups (FITS), each at most ``target`` rows."""
    if n_rows == 0:
        return
    pieces = math.ceil(n_rows / target)
    bounds = [(n_rows * k) // pieces for k in range(pieces + 1)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield a, b, [], 0
