"""The partition key: which rows of which catalog file one task fits.

One frozen, typed value (as HATS has ``HealpixPixel``) is what the planner yields, what the
campaign's manifest stores one row of, and what :func:`sedscale.catalog.read.read_partition`
reads — so no layer passes a partition as a bare integer or a loose dict of manifest columns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Partition:
    """Rows ``[row_start, row_stop)`` of one catalog file, made of whole row groups where possible.

    ``row_groups`` are the file's row groups covering the range and ``rg_offset`` the row (within
    the file) where the first of them starts, so a reader reads only those groups and slices.
    """

    partition_id: int
    file: str
    file_index: int
    row_start: int
    row_stop: int
    row_groups: tuple[int, ...]
    rg_offset: int
    #: how the file is read: ``parquet`` (flat or HATS pixel files) or ``fits`` (a binary table;
    #: ``row_groups`` is then empty and rows are read by range)
    form: str = "parquet"
    #: the HEALPix pixel (order, index) the file belongs to for HATS input, else (-1, -1): a
    #: partition never spans two pixels, so results can be written back per pixel
    pixel_order: int = -1
    pixel: int = -1

    @property
    def has_pixel(self) -> bool:
        """True for a partition of a HATS catalog (it lies in one HEALPix pixel)."""
        return self.pixel_order >= 0

    @property
    def n_rows(self) -> int:
        """Rows in the partition."""
        return self.row_stop - self.row_start
