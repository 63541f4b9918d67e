"""Flat Parquet catalogs: one file, a directory of ``*.parquet`` files, or a glob — footers only.

Each file's footer (schema, row groups, row counts) is read once; files sharing a schema share one
:class:`pyarrow.Schema` in the :class:`~sedscale.catalog.source.CatalogSource`, so memory does not
grow with files × columns. Local or remote (``s3://``, ``https://``) alike.
"""

from __future__ import annotations

from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from sedscale.catalog import storage
from sedscale.catalog.source import CatalogFile, CatalogPath, CatalogSource, check_catalog_rows, distinct_schemas
from sedscale.catalog.units_metadata import merge_units, units_of_schema
from sedscale.errors import CatalogError


def expand(path: CatalogPath, suffixes: tuple[str, ...] = (".parquet",), what: str = "*.parquet") -> list[str]:
    """Every file ``path`` names (a file, a directory searched for ``suffixes``, a glob), sorted."""
    if isinstance(path, (list, tuple)):
        out: list[str] = []
        for p in path:
            out.extend(expand(p, suffixes, what))
        return sorted(set(out))
    text = str(path)
    if any(ch in text for ch in "*?["):
        matches = storage.glob(text if storage.is_remote(text) else text)
        if not matches:
            raise CatalogError(f"{text}: the glob matches no file")
        return matches
    location = storage.normalize(text)
    if storage.is_dir(location):
        matches = storage.find_files(location, suffixes)
        if not matches:
            raise CatalogError(f"{location}: the directory holds no {what} file")
        return matches
    if not storage.exists(location):
        raise CatalogError(f"{location}: no such file")
    return [location]


def read_footer(location: str) -> tuple[pq.FileMetaData, pa.Schema]:
    """A Parquet file's footer and Arrow schema; a CatalogError naming the file if unreadable."""
    fs, inner = storage.arrow_filesystem(location)
    try:
        with fs.open_input_file(inner) as fh:
            if fh.size() == 0:
                raise CatalogError(f"{location}: the file is empty (0 bytes)")
            pf = pq.ParquetFile(fh)
            return pf.metadata, pf.schema_arrow
    except CatalogError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{location}: not a readable Parquet file (truncated or corrupt?): {exc}") from exc


def open_parquet(path: CatalogPath) -> CatalogSource:
    """Open flat Parquet input (see the module docstring)."""
    locations = expand(path)
    files: list[CatalogFile] = []
    schemas: list[pa.Schema] = []
    for location in locations:
        meta, schema = read_footer(location)
        st = storage.stat(location)
        rg_rows = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
        files.append(CatalogFile(location, st.size, st.mtime_ns, meta.num_rows, rg_rows))
        schemas.append(schema)
    unique, index = distinct_schemas(schemas)
    files = [_with_schema_index(f, i) for f, i in zip(files, index)]
    units, conflicts = merge_units((_file_with_schema(files, i), units_of_schema(schema))
                                   for i, schema in enumerate(unique))
    source = CatalogSource(tuple(files), unique[0], "parquet", unique, units, conflicts)
    return check_catalog_rows(source, path)


def _file_with_schema(files: Sequence[CatalogFile], index: int) -> str:
    """The first file with distinct schema ``index`` (for messages)."""
    return next(f.path for f in files if f.schema_index == index)


def _with_schema_index(cf: CatalogFile, index: int) -> CatalogFile:
    return CatalogFile(cf.path, cf.size, cf.mtime_ns, cf.num_rows, cf.row_group_rows, schema_index=index)


def open_many(locations: Sequence[str]) -> list[tuple[pq.FileMetaData, pa.Schema]]:
    """Footers of several files (HATS without ``_metadata``), in order."""
    return [read_footer(loc) for loc in locations]
