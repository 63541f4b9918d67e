"""Partition planning from Parquet footers alone: which rows of which file each task fits.

A partition never spans two files and is made of whole row groups where possible (the cheapest
unit to read); a row group larger than the target is split into even row ranges. The plan reads
only footers (:mod:`sedscale.catalog.source` already has them), keeps O(partitions) memory and is
deterministic: files in path order, row groups in file order. The campaign layer stores the plan
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
    for file_index, cf in enumerate(source.files):
        for start, stop, groups, rg_offset in _file_partitions(cf.row_group_rows, rows_per_partition):
            plan.append(Partition(partition_id=len(plan), file=str(cf.path), file_index=file_index,
                                  row_start=start, row_stop=stop, row_groups=tuple(groups), rg_offset=rg_offset))
    return plan
