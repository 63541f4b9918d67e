"""``sedscale export --format hats``: the results as a HATS catalog that ``lsdb.open_catalog`` opens.

Every file a HATS reader looks for is written by the ``hats`` / ``hats-import`` libraries, never by
hand: pixel paths from ``hats.io.paths``, ``_healpix_29`` from
``hats.pixel_math.spatial_index.compute_spatial_index``, ``partition_info.csv`` from
``PartitionInfo``, ``_metadata`` / ``_common_metadata`` from ``write_parquet_metadata`` and
``hats.properties`` from ``TableProperties``. Rows carry ``ra``, ``dec`` and ``source_id`` (the
input id), so the catalog joins back to its input by id or by position.

Two layouts:

- **HATS input** (every manifest partition lies in one HEALPix pixel): one pixel file per input
  pixel, so the results align with the input catalog pixel for pixel. A pixel's partitions are
  consecutive in the plan, so one pixel file is open at a time and memory stays one partition.
  Rows keep the input's order (hats-import sorts a pixel by ``_healpix_29``, so they stay sorted).
- **Any other input**: partitioned by position with hats-import's own pipeline (map, split, reduce
  over a Dask client in this process, threads only). It scales past memory — a reduce step holds
  one destination pixel (``rows_per_pixel`` rows at most) — where ``lsdb.from_dataframe`` would need
  every row in memory at once. The rows are first streamed, partition by partition, into one
  staging Parquet file beside the output, which is removed afterwards.

A HATS catalog places every row by position, so a campaign whose rows have no ``ra``/``dec`` (its
profile named none) is refused with a message that says what to add to the profile. The output is
assembled in a temporary directory beside ``out`` and renamed onto it only when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sedscale._version import __version__
from sedscale.campaign.committed import CommittedResults
from sedscale.catalog.partition import Partition
from sedscale.errors import CampaignError
from sedscale.fsutil import atomic_output, fsync_dir
from sedscale.results import annotated_results_schema

if TYPE_CHECKING:
    from hats.pixel_math.healpix_pixel import HealpixPixel

#: hats-import's default largest pixel (rows) when partitioning by position.
DEFAULT_ROWS_PER_PIXEL = 1_000_000


def check_positions(results: CommittedResults, part: Partition, table: pa.Table) -> None:
    """Refuse rows without a sky position: HATS cannot place them (message says how to fix)."""
    missing = pc.or_(table.column("ra").is_null(), table.column("dec").is_null())
    n_missing = pc.sum(missing).as_py() or 0
    if not n_missing:
        return
    example = table.filter(missing).column("source_id")[0].as_py()
    named = [key for key in ("ra", "dec") if results.meta.profile.get(key)]
    profile = (f"the campaign's profile names {' and '.join(named)}" if named
               else "the campaign's profile names no ra/dec columns")
    raise CampaignError(
        f"{results.paths.root}: {n_missing} of {table.num_rows} rows of partition {part.partition_id} have no "
        f"sky position (ra/dec), e.g. source_id {example}; {profile}. A HATS catalog places every row by "
        "position: add `ra: <column>` and `dec: <column>` (degrees) to the profile, or give the catalog "
        "`ra`/`dec` columns with the generic profile, and run the campaign again — or export with "
        "--format parquet or --format fits, which need no positions"
    )


def _sync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (bottom up), so the rename that publishes
    the catalog publishes complete files."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


@contextmanager
def _catalog_dir(out: Path) -> Iterator[Path]:
    """A fresh directory to build the catalog in, renamed onto ``out`` on success, removed on error."""
    if out.exists():
        raise CampaignError(f"{out} exists; remove it or choose another output for --format hats")
    with atomic_output(out) as tmp:
        try:
            tmp.mkdir()
            yield tmp
            _sync_tree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _properties(root: Path, name: str, rows: int, pixels: list[HealpixPixel], max_rows: int) -> None:
    """``partition_info.csv``, ``_metadata``, ``_common_metadata`` and ``hats.properties``."""
    from hats.catalog import PartitionInfo, TableProperties
    from hats.io import paths, write_parquet_metadata
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, SPATIAL_INDEX_ORDER

    info = PartitionInfo.from_healpix(pixels)
    # hats and distributed leave some methods unannotated (strict mypy: untyped call)
    coverage = info.calculate_fractional_coverage()  # type: ignore[no-untyped-call]
    info.write_to_file(paths.get_partition_info_pointer(root))
    write_parquet_metadata(root)
    provenance = TableProperties.new_provenance_dict(root, builder=f"sedscale {__version__}")
    TableProperties(
        catalog_name=name, catalog_type="object", total_rows=rows, ra_column="ra", dec_column="dec",
        healpix_column=SPATIAL_INDEX_COLUMN, healpix_order=SPATIAL_INDEX_ORDER,
        hats_order=info.get_highest_order(), hats_max_rows=max_rows,
        moc_sky_fraction=f"{coverage:0.5f}", **provenance,
    ).to_properties_file(root)


def _with_spatial_index(table: pa.Table, part: Partition, schema: pa.Schema) -> pa.Table:
    """``table`` with ``_healpix_29`` first, every row checked to lie in the partition's pixel."""
    from hats.pixel_math.spatial_index import compute_spatial_index, spatial_index_to_healpix

    index = compute_spatial_index(table.column("ra").to_numpy(), table.column("dec").to_numpy())
    outside = spatial_index_to_healpix(index, part.pixel_order) != part.pixel
    if outside.any():
        row = int(np.argmax(outside))
        raise CampaignError(
            f"partition {part.partition_id}: source_id {table.column('source_id')[row].as_py()} at "
            f"ra={table.column('ra')[row].as_py()}, dec={table.column('dec')[row].as_py()} lies outside its input "
            f"pixel (order {part.pixel_order}, pixel {part.pixel}): the profile's ra/dec are not the HATS "
            "catalog's position columns"
        )
    return table.cast(schema.remove(0)).add_column(0, schema.field(0), pa.array(index, pa.int64()))


def write_pixels(results: CommittedResults, root: Path) -> tuple[int, list[HealpixPixel], int]:
    """One Parquet file per input pixel under ``root``; returns (rows, pixels, largest pixel)."""
    from hats.io import paths
    from hats.pixel_math.healpix_pixel import HealpixPixel
    from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN

    schema = annotated_results_schema().insert(0, pa.field(SPATIAL_INDEX_COLUMN, pa.int64()))
    pixels: list[HealpixPixel] = []
    writer: pq.ParquetWriter | None = None
    rows = pixel_rows = largest = 0
    try:
        for part, table in results.tables():
            check_positions(results, part, table)
            pixel = HealpixPixel(part.pixel_order, part.pixel)
            if table.num_rows and (not pixels or pixels[-1] != pixel):
                if pixel in pixels:
                    raise CampaignError(f"{results.paths.manifest}: partition {part.partition_id} returns to pixel "
                                        f"{pixel} after another pixel; a pixel's partitions must be consecutive")
                if writer is not None:
                    writer.close()
                path = Path(paths.pixel_catalog_file(root, pixel).path)
                path.parent.mkdir(parents=True, exist_ok=True)
                writer, pixel_rows = pq.ParquetWriter(path, schema), 0
                pixels.append(pixel)
            if table.num_rows and writer is not None:
                writer.write_table(_with_spatial_index(table, part, schema))
                pixel_rows += table.num_rows
                largest = max(largest, pixel_rows)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows, pixels, largest


def _stage(results: CommittedResults, staging: Path) -> int:
    """Stream every row (positions checked) into one Parquet file for hats-import."""
    schema = annotated_results_schema()
    rows = 0
    with pq.ParquetWriter(staging, schema) as writer:
        for part, table in results.tables():
            check_positions(results, part, table)
            if table.num_rows:
                writer.write_table(table.cast(schema))
            rows += table.num_rows
    return rows


def import_by_position(results: CommittedResults, root: Path, rows_per_pixel: int) -> int:
    """Partition the rows by position with hats-import's pipeline; returns the number of rows."""
    from dask.distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    work = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".import", dir=root.parent))
    try:
        staging = work / "results.parquet"
        rows = _stage(results, staging)
        if rows == 0:
            raise CampaignError(f"{results.paths.root}: the campaign has no rows; a HATS catalog needs at least one")
        args = ImportArguments(
            output_path=str(root.parent), output_artifact_name=root.name, input_file_list=[str(staging)],
            file_reader="parquet", ra_column="ra", dec_column="dec", pixel_threshold=rows_per_pixel,
            tmp_dir=str(work / "tmp"), resume=False, progress_bar=False, expected_total_rows=rows,
        )
        threads = os.cpu_count() or 1
        with Client(processes=False, n_workers=1, threads_per_worker=threads,  # type: ignore[no-untyped-call]
                    dashboard_address=None) as client:
            pipeline_with_client(args, client)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _rename_catalog(root: Path, name: str) -> None:
    """hats-import names the catalog after its (temporary) directory: give it the output's name."""
    from hats.catalog import TableProperties

    properties = TableProperties.read_from_dir(root)
    properties.copy_and_update(catalog_name=name).to_properties_file(root)  # type: ignore[no-untyped-call]


def write_hats(results: CommittedResults, out: Path, *, rows_per_pixel: int = DEFAULT_ROWS_PER_PIXEL) -> int:
    """Write the results as the HATS catalog ``out`` (a directory); returns the number of rows."""
    with_pixel = {p.has_pixel for p in results.partitions}
    if len(with_pixel) > 1:
        raise CampaignError(f"{results.paths.manifest}: some partitions have a HEALPix pixel and some do not")
    with _catalog_dir(out) as root:
        if with_pixel == {True}:
            rows, pixels, largest = write_pixels(results, root)
            if rows == 0:
                raise CampaignError(f"{results.paths.root}: the campaign has no rows; a HATS catalog needs at least one")
            _properties(root, out.name, rows, pixels, largest)
        else:
            rows = import_by_position(results, root, rows_per_pixel)
            _rename_catalog(root, out.name)
    return rows
