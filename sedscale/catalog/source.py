"""Opening a catalog: one Parquet file, a directory of them, or a glob — footers only.

Opening reads each file's Parquet footer (schema, row groups, row counts) and nothing else, so it
costs the same for a 10^9-row catalog as for a small one per file. Every file-level fault ends in
one :class:`~sedscale.errors.CatalogError` that names the file (and the column, where one is at
fault), before anything is written.
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sedscale.errors import CatalogError

CatalogPath = Union[str, Path, Sequence[Union[str, Path]]]


@dataclass(frozen=True)
class CatalogFile:
    """One Parquet file of a catalog, as its footer describes it."""

    path: Path
    size: int
    mtime_ns: int
    num_rows: int
    row_group_rows: tuple[int, ...]  # rows in each row group, in order


@dataclass(frozen=True)
class CatalogSource:
    """A catalog's files (sorted by path, so plans are deterministic) and their shared schema."""

    files: tuple[CatalogFile, ...]
    schema: pa.Schema

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(f.path for f in self.files)

    @property
    def num_rows(self) -> int:
        return sum(f.num_rows for f in self.files)

    def fingerprint(self) -> list[dict[str, object]]:
        """Path, size, mtime and row count of every file: what resume compares."""
        return [
            {"path": str(f.path), "size": f.size, "mtime_ns": f.mtime_ns, "num_rows": f.num_rows}
            for f in self.files
        ]

    def dataset(self, columns: Sequence[str] | None = None) -> ds.Dataset:
        """A pyarrow dataset over the files, for streaming scans with column projection."""
        return ds.dataset([str(p) for p in self.paths], format="parquet", schema=self.schema)


def _expand(path: CatalogPath) -> list[Path]:
    if isinstance(path, (list, tuple)):
        out: list[Path] = []
        for p in path:
            out.extend(_expand(p))
        return sorted(set(out))
    text = str(path)
    if any(ch in text for ch in "*?["):
        matches = sorted(Path(m) for m in globlib.glob(text, recursive=True) if Path(m).is_file())
        if not matches:
            raise CatalogError(f"{text}: the glob matches no file")
        return matches
    p = Path(text)
    if p.is_dir():
        matches = sorted(q for q in p.rglob("*.parquet") if q.is_file())
        if not matches:
            raise CatalogError(f"{p}: the directory holds no *.parquet file")
        return matches
    if not p.exists():
        raise CatalogError(f"{p}: no such file")
    return [p]


def _open_file(path: Path) -> tuple[CatalogFile, pa.Schema]:
    stat = path.stat()
    if stat.st_size == 0:
        raise CatalogError(f"{path}: the file is empty (0 bytes)")
    try:
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise CatalogError(
            f"{path}: not a readable Parquet file (truncated or corrupt?): {exc}"
        ) from exc
    rg_rows = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
    return (
        CatalogFile(path.resolve(), stat.st_size, stat.st_mtime_ns, meta.num_rows, rg_rows),
        schema,
    )


def open_catalog(path: CatalogPath) -> CatalogSource:
    """Open a catalog from a file, a directory (``*.parquet`` below it) or a glob.

    Raises :class:`CatalogError` naming the file for: nothing matched, unreadable or truncated
    Parquet, a catalog with no rows, files whose schemas disagree on a column.
    """
    paths = _expand(path)
    files: list[CatalogFile] = []
    schema: pa.Schema | None = None
    first: Path | None = None
    for p in paths:
        cf, file_schema = _open_file(p)
        files.append(cf)
        if schema is None:
            schema, first = file_schema, p
            continue
        for field in file_schema:
            idx = schema.get_field_index(field.name)
            if idx >= 0 and schema.field(idx).type != field.type:
                raise CatalogError(
                    f"{p}: column {field.name!r} has type {field.type}, but {first} has "
                    f"{schema.field(idx).type}; every file of a catalog must agree"
                )
        missing = [n for n in schema.names if n not in file_schema.names]
        if missing:
            raise CatalogError(f"{p}: missing column(s) {missing} that {first} has")
    assert schema is not None
    total = sum(f.num_rows for f in files)
    if total == 0:
        where = files[0].path if len(files) == 1 else f"{len(files)} files under {path}"
        raise CatalogError(f"{where}: the catalog has no rows")
    return CatalogSource(tuple(files), schema)

