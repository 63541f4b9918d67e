"""HATS catalogs (and collections) as sedscale input, read through the ``hats`` library's metadata.

Why through ``hats`` and ``_metadata`` rather than a directory walk: a HATS root also holds a
``data_thumbnail.parquet``, ``per_partition_statistics.parquet``, and — in a collection — a margin
cache and an index table, none of which are rows of the catalog (a walk read them as data:
+18 thumbnail rows, +789 margin duplicates, a 32 KB schema error). ``hats.read_hats`` resolves a
collection to its main catalog and lists exactly its pixels; the pixel files are the ones
``hats.io.paths.pixel_catalog_file`` names. Row counts and row groups come from the dataset's
single ``_metadata`` file (one read, instead of one footer per pixel file — 10^4 files on S3
would be 10^4 round trips before the first task); without ``_metadata`` each pixel file's
footer is read.

Each pixel file is one :class:`~sedscale.catalog.source.CatalogFile` carrying its pixel, so the
planner never puts two pixels in one partition (a large pixel is split by rows) and results can
be written back per pixel. The hive columns ``Norder``/``Dir``/``Npix`` of ``_common_metadata``
are partitioning keys, not data in the files, so they are left out of the schema.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.catalog import storage
from sedscale.catalog.parquet_files import read_footer
from sedscale.catalog.source import CatalogFile, CatalogSource, check_catalog_rows, distinct_schemas
from sedscale.catalog.units_metadata import units_of_schema
from sedscale.errors import CatalogError

if TYPE_CHECKING:
    from hats.catalog import Catalog

PROPERTIES_FILES = ("hats.properties", "properties", "collection.properties")
HIVE_COLUMNS = ("Norder", "Dir", "Npix")


def looks_like_hats(location: str) -> bool:
    """True for a HATS catalog or collection root; a CatalogError for a HATS-shaped directory
    whose properties file is missing (it cannot be read safely without it)."""
    if storage.is_remote(location):
        # a web server cannot say "directory"; a properties file under the location can
        if location.lower().endswith((".parquet", ".fits", ".fit", ".fits.gz")):
            return False
        return any(storage.exists(storage.join(location, name)) for name in PROPERTIES_FILES)
    if not storage.is_dir(location):
        return False
    if any(storage.exists(storage.join(location, name)) for name in PROPERTIES_FILES):
        return True
    dataset = storage.join(location, "dataset")
    hats_shaped = storage.exists(storage.join(dataset, "_metadata")) or (
        storage.is_dir(dataset) and any(p.rsplit("/", 1)[-1].startswith("Norder=") for p in storage.list_dir(dataset))
    )
    if hats_shaped:
        raise CatalogError(
            f"{location}: looks like a HATS catalog (it has dataset/Norder=…) but has no hats.properties "
            "(nor collection.properties); the HATS metadata is incomplete — copy the whole catalog, "
            "or point at the collection root"
        )
    return False


def _load_main_catalog(location: str) -> "Catalog":
    import hats
    from hats.catalog import Catalog, CatalogCollection

    try:
        loaded = hats.read_hats(storage.upath(location), read_moc=False)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise CatalogError(f"{location}: cannot read the HATS catalog's metadata: {exc}") from exc
    if isinstance(loaded, CatalogCollection):
        loaded = loaded.main_catalog
    if not isinstance(loaded, Catalog):
        raise CatalogError(f"{location}: a HATS {type(loaded).__name__}, not an object catalog; point at "
                           "the catalog (or its collection), not a margin or index table")
    return loaded


def _row_groups_from_metadata(metadata_location: str) -> "OrderedDict[str, list[int]] | None":
    """``{relative file path: [rows per row group]}`` from ``dataset/_metadata``, or None if absent."""
    if not storage.exists(metadata_location):
        return None
    fs, inner = storage.arrow_filesystem(metadata_location)
    try:
        with fs.open_input_file(inner) as fh:
            meta = pq.read_metadata(fh)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{metadata_location}: unreadable HATS _metadata (truncated?): {exc}") from exc
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        groups.setdefault(rg.column(0).file_path, []).append(rg.num_rows)
    return groups


def _data_schema(catalog: "Catalog", first_file: str) -> pa.Schema:
    schema = catalog.schema if catalog.schema is not None else read_footer(first_file)[1]
    keep = [i for i, name in enumerate(schema.names) if name not in HIVE_COLUMNS]
    return pa.schema([schema.field(i) for i in keep], metadata=schema.metadata)


def open_hats(location: str) -> CatalogSource:
    """Open a HATS catalog or collection root (local, ``s3://``, ``https://``)."""
    catalog = _load_main_catalog(location)
    base = str(catalog.catalog_base_dir).rstrip("/")
    if storage.is_remote(location) and not storage.is_remote(base):
        base = location.split("://", 1)[0] + "://" + base
    dataset = storage.join(base, "dataset")
    suffix = catalog.catalog_info.npix_suffix
    pixels = sorted(catalog.get_healpix_pixels(), key=lambda p: (p.order, p.pixel))
    groups = _row_groups_from_metadata(storage.join(dataset, "_metadata"))
    files: list[CatalogFile] = []
    for pixel in pixels:
        rel = f"Norder={pixel.order}/Dir={pixel.dir}/Npix={pixel.pixel}"
        for rel_file, rows in _pixel_files(dataset, rel, suffix, groups):
            files.append(CatalogFile(storage.join(dataset, rel_file), -1, -1, sum(rows), tuple(rows),
                                     pixel_order=pixel.order, pixel=pixel.pixel))
    if not files:
        raise CatalogError(f"{location}: the HATS catalog lists no pixels")
    schema = _data_schema(catalog, files[0].path)
    unique, _ = distinct_schemas([schema])
    fingerprint = tuple(p for p in (storage.join(dataset, "_metadata"), storage.join(base, "partition_info.csv"),
                                    storage.join(base, "hats.properties")) if storage.exists(p))
    source = CatalogSource(tuple(files), schema, "hats", unique, units_of_schema(schema), root=base,
                           extra_fingerprint=fingerprint)
    return check_catalog_rows(source, location)


def _pixel_files(dataset: str, rel: str, suffix: str,
                 groups: "OrderedDict[str, list[int]] | None") -> list[tuple[str, list[int]]]:
    """The files of one pixel (relative to the dataset directory) and their row-group sizes."""
    if suffix in ("/", "\\"):
        if groups is not None:
            found = [(path, rows) for path, rows in groups.items() if path.startswith(rel + "/")]
            if found:
                return sorted(found)
        names = [p for p in storage.find_files(storage.join(dataset, rel), (".parquet",))]
        rels = [n[len(dataset) + 1:] for n in names]
    else:
        rels = [rel + suffix]
        if groups is not None and rels[0] in groups:
            return [(rels[0], groups[rels[0]])]
    out = []
    for r in rels:
        meta, _ = read_footer(storage.join(dataset, r))
        out.append((r, [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]))
    return out
