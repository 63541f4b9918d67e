"""Survey-shaped test catalogs built from ``sedscale mock`` tables: HATS, IRSA-wide HATS, FITS tiles.

Tests and ``benchmarks/bench_ingest.py`` need catalogs that look like the ones astronomers are
handed (issue 14): a real HATS catalog (or collection with a margin cache) written by
``hats-import``; Euclid Q1 as IRSA serves it (lower-case names with a table prefix, ~1,600
columns, ``unit`` metadata on flux columns); the native MER names; per-tile FITS binary tables
with ``TUNIT``. Every builder is deterministic given its ``seed`` and keeps the mock's values
(float64 fluxes, int64 ids) untouched, so the same rows read through each form give the same fit.

The mock's bands map to Euclid names as: ``euclid_vis`` → the VIS PSF flux, ``euclid_y/j/h`` →
the NISP template fits, ground ``lsst_<b>`` → ``<b>_ext_lsst_templfit`` (the mock's ground bands
are LSST-like). Columns for the Q1 cookbook's total-flux correction are added with a known
answer: ``flux_detection_total / flux_vis_to_<band>_templfit`` is ``1 / factor`` with ``factor``
drawn per row in [0.9, 1.0], so a corrected template flux is the mock flux ÷ ``factor``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from hats_import.runtime_arguments import RuntimeArguments

#: the field-metadata key (and value) IRSA's ``_common_metadata`` carries on flux columns
UNIT_KEY = b"unit"
FLUX_UNIT = "uJy"
#: HATS's spatial-index column (HEALPix order 29), present in IRSA's files
HEALPIX_29 = "_healpix_29"
#: table prefixes of the 14 tables IRSA joined into the Euclid Q1 merged-objects catalog
IRSA_PREFIXES = ("mer_", "morph_", "phz_", "physparam_", "galaxysed_", "z_", "lines_",
                 "classprob_", "spe_", "qso_", "star_", "ext_", "sfh_", "sersic_")
EXTRA_TYPES = ("float32", "float64", "int32", "int16", "bool", "string")
_STEMS = ("flux_aper", "fluxerr_aper", "sersic_index", "ellipticity", "kron_radius", "flag",
          "median", "mode", "chi2", "prob", "mass", "sfr", "ebv", "ew", "snr", "area")
_NISP = ("y", "j", "h")
_GROUND_PREFIX = "lsst_"


# --------------------------------------------------------------------------------------------
# positions
# --------------------------------------------------------------------------------------------
def sky_cap_positions(n: int, *, seed: int, center: tuple[float, float],
                      radius_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (ra, dec) in degrees drawn uniformly (equal area) on a cap around ``center``.

    The angular distance θ from the centre has cos θ uniform in [cos r, 1] and the position
    angle is uniform; the point is then rotated from the pole onto ``center``.
    """
    if not 0.0 < radius_deg <= 180.0:
        raise ValueError(f"radius_deg must lie in (0, 180], not {radius_deg}")
    rng = np.random.default_rng(seed)
    cos_theta = rng.uniform(np.cos(np.radians(radius_deg)), 1.0, n)
    sin_theta = np.sqrt(np.clip(1.0 - cos_theta**2, 0.0, None))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    ra0, dec0 = np.radians(center[0]), np.radians(center[1])
    axis = np.array([np.cos(dec0) * np.cos(ra0), np.cos(dec0) * np.sin(ra0), np.sin(dec0)])
    east = np.array([-np.sin(ra0), np.cos(ra0), 0.0])
    north = np.array([-np.sin(dec0) * np.cos(ra0), -np.sin(dec0) * np.sin(ra0), np.cos(dec0)])
    vec = (cos_theta[:, None] * axis + (sin_theta * np.cos(phi))[:, None] * north
           + (sin_theta * np.sin(phi))[:, None] * east)
    ra = np.degrees(np.arctan2(vec[:, 1], vec[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(vec[:, 2], -1.0, 1.0)))
    return ra, dec


def add_sky_positions(table: pa.Table, *, seed: int, center: tuple[float, float] = (52.0, -28.0),
                      radius_deg: float = 1.0) -> pa.Table:
    """``table`` with ``ra``, ``dec`` (float64, degrees) appended, uniform on a spherical cap.

    The default centre lies in the Euclid Deep Field Fornax. Refuses a table that already has
    ``ra`` or ``dec`` rather than silently replacing them.
    """
    clash = [c for c in ("ra", "dec") if c in table.column_names]
    if clash:
        raise ValueError(f"the table already has column(s) {clash}")
    ra, dec = sky_cap_positions(table.num_rows, seed=seed, center=center, radius_deg=radius_deg)
    return table.append_column("ra", pa.array(ra)).append_column("dec", pa.array(dec))


# --------------------------------------------------------------------------------------------
# HATS through hats-import
# --------------------------------------------------------------------------------------------
def write_hats_catalog(
    table: pa.Table,
    out_dir: Path,
    *,
    catalog_name: str,
    ra_column: str = "ra",
    dec_column: str = "dec",
    pixel_threshold: int = 1_000,
    highest_order: int = 8,
    margin_arcsec: float | None = None,
    collection_name: str | None = None,
    thumbnail: bool = False,
    partition_stats: bool = False,
) -> Path:
    """A real HATS catalog of ``table`` written by hats-import's pipeline; returns its root.

    ``pixel_threshold`` is the most rows in one pixel file (hats-import merges sibling pixels up
    to it), so a few thousand rows on a 1° cap give several pixels. With ``margin_arcsec`` the
    catalog is written as a HATS *collection* (``collection_name``, default
    ``<catalog_name>_collection``) holding the catalog and a margin cache of that width as the
    default margin, and the collection's root is returned: a reader pointed there must read
    exactly the main catalog's pixels. ``thumbnail`` / ``partition_stats`` also write
    ``data_thumbnail.parquet`` / ``per_partition_statistics.parquet`` (files that are not data).
    """
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.collection.arguments import CollectionArguments

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sedscale-hats-") as tmp:
        source = Path(tmp) / "input.parquet"
        pq.write_table(table, source)
        work = str(Path(tmp) / "work")
        args: RuntimeArguments
        if margin_arcsec is None:
            name = catalog_name
            args = ImportArguments(output_path=str(out_dir), output_artifact_name=name,
                                   progress_bar=False, resume=False, tmp_dir=work,
                                   create_thumbnail=thumbnail,
                                   create_per_partition_stats=partition_stats,
                                   input_file_list=[str(source)], file_reader="parquet",
                                   ra_column=ra_column, dec_column=dec_column,
                                   pixel_threshold=pixel_threshold,
                                   highest_healpix_order=highest_order,
                                   use_schema_file=str(source))
        else:
            name = collection_name or f"{catalog_name}_collection"
            args = (CollectionArguments(output_path=str(out_dir), output_artifact_name=name,
                                        progress_bar=False, resume=False, tmp_dir=work,
                                        create_thumbnail=thumbnail,
                                        create_per_partition_stats=partition_stats)
                    .catalog(output_artifact_name=catalog_name, input_file_list=[str(source)],
                             file_reader="parquet", ra_column=ra_column, dec_column=dec_column,
                             pixel_threshold=pixel_threshold, highest_healpix_order=highest_order,
                             use_schema_file=str(source))
                    .add_margin(margin_threshold=margin_arcsec, is_default=True))
        _run_hats_import(args)
    return out_dir / name


def _run_hats_import(args: RuntimeArguments) -> None:
    """Run a hats-import pipeline on an in-process dask cluster of one single-threaded worker.

    In-process (``processes=False``) starts in well under a second and does not compete with
    the test's own processes for the machine's cores; a test catalog is small enough for one
    thread.
    """
    from dask.distributed import Client
    from hats_import.pipeline import pipeline_with_client

    with Client(n_workers=1, threads_per_worker=1, processes=False,
                dashboard_address=None) as client:
        pipeline_with_client(args, client)


# --------------------------------------------------------------------------------------------
# HATS written pixel by pixel (benchmark sizes)
# --------------------------------------------------------------------------------------------
#: makes the rows with the given (0-based, catalog-wide) indices, ``ra``/``dec`` included
RowMaker = Callable[[np.ndarray], pa.Table]


def write_hats_pixels(
    out_dir: Path,
    *,
    catalog_name: str,
    ra: np.ndarray,
    dec: np.ndarray,
    order: int,
    make_rows: RowMaker,
    chunk_rows: int = 50_000,
    ra_column: str = "ra",
    dec_column: str = "dec",
) -> Path:
    """A HATS catalog written directly with pyarrow plus hats' own metadata writers.

    For catalogs too large to push through hats-import's map/split/reduce on a small machine
    (10^6–10^7 rows × 100–1,000 columns): rows are assigned to HEALPix pixels of one ``order``
    from ``ra``/``dec``, sorted by the order-29 spatial index within each pixel, and each pixel's
    rows are produced by ``make_rows`` in chunks of ``chunk_rows`` (one row group each), so
    memory stays at one chunk. ``_metadata``, ``_common_metadata``, ``partition_info.csv`` and
    ``hats.properties`` come from ``hats`` itself. Returns the catalog root.
    """
    from hats.catalog import PartitionInfo
    from hats.io import paths
    from hats.io.parquet_metadata import write_parquet_metadata
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.spatial_index import compute_spatial_index

    root = Path(out_dir) / catalog_name
    if root.exists():
        raise FileExistsError(f"{root} already exists")
    spatial = np.asarray(compute_spatial_index(ra, dec), dtype=np.int64)
    pixel_of_row = spatial >> (2 * (29 - order))
    ordered = np.argsort(spatial, kind="stable")
    pixels = np.unique(pixel_of_row)
    for pix in pixels:
        rows = ordered[pixel_of_row[ordered] == pix]
        target = Path(str(paths.pixel_catalog_file(root, HealpixPixel(order, int(pix)))))
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_pixel_file(target, rows, spatial, make_rows, chunk_rows)
    healpix = [HealpixPixel(order, int(p)) for p in pixels]
    PartitionInfo.from_healpix(healpix).write_to_file(paths.get_partition_info_pointer(root))
    total = write_parquet_metadata(root)
    _write_properties(root, catalog_name, total, order, ra_column, dec_column)
    return root


def _write_pixel_file(target: Path, rows: np.ndarray, spatial: np.ndarray, make_rows: RowMaker,
                      chunk_rows: int) -> None:
    """One pixel's rows, chunk by chunk, each chunk a row group with ``_healpix_29`` appended."""
    writer: pq.ParquetWriter | None = None
    try:
        for start in range(0, rows.size, chunk_rows):
            idx = rows[start:start + chunk_rows]
            chunk = make_rows(idx).append_column(HEALPIX_29, pa.array(spatial[idx]))
            if writer is None:
                writer = pq.ParquetWriter(target, chunk.schema)
            writer.write_table(chunk, row_group_size=chunk.num_rows)
    finally:
        if writer is not None:
            writer.close()


def _write_properties(root: Path, name: str, total: int, order: int, ra_column: str,
                      dec_column: str) -> None:
    """``hats.properties`` as hats-import writes it for an object catalog (hats' own class)."""
    from hats.catalog import TableProperties

    TableProperties.model_validate({
        "catalog_name": name, "catalog_type": "object", "total_rows": total,
        "ra_column": ra_column, "dec_column": dec_column, "healpix_column": HEALPIX_29,
        "healpix_order": 29, "hats_order": order,
    }).to_properties_file(root)


# --------------------------------------------------------------------------------------------
# Euclid Q1 names: IRSA's HATS copy and the native MER catalogue
# --------------------------------------------------------------------------------------------
def _need(table: pa.Table, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise ValueError(f"the table lacks column(s) {missing} (a `sedscale mock --survey euclid` "
                         "table with sky positions from add_sky_positions is expected)")


def _flux_field(name: str, values: pa.Array) -> tuple[pa.Field, pa.Array]:
    return pa.field(name, values.type, metadata={UNIT_KEY: FLUX_UNIT.encode()}), values


def _q1_band_names(table: pa.Table) -> dict[str, str]:
    """The mock's band → the IRSA flux-column stem (``vis_psf``, ``y_templfit``, ``g_ext_lsst_templfit``)."""
    stems: dict[str, str] = {}
    for name in table.column_names:
        if not name.startswith("flux_"):
            continue
        band = name[len("flux_"):]
        if band == "euclid_vis":
            stems[band] = "vis_psf"
        elif band.startswith("euclid_") and band[len("euclid_"):] in _NISP:
            stems[band] = f"{band[len('euclid_'):]}_templfit"
        elif band.startswith(_GROUND_PREFIX):
            stems[band] = f"{band[len(_GROUND_PREFIX):]}_ext_lsst_templfit"
    return stems


def _q1_core(table: pa.Table, seed: int) -> list[tuple[pa.Field, pa.Array]]:
    """Id, position, bands, redshift and total-flux-correction columns in IRSA's names."""
    _need(table, ("source_id", "ra", "dec", "redshift", "flux_euclid_vis"))
    rng = np.random.default_rng([seed, 1])
    n = table.num_rows
    out: list[tuple[pa.Field, pa.Array]] = [
        (pa.field("object_id", pa.int64()), table.column("source_id").combine_chunks().cast(pa.int64())),
        (pa.field("ra", pa.float64()), table.column("ra").combine_chunks()),
        (pa.field("dec", pa.float64()), table.column("dec").combine_chunks()),
        (pa.field("tileid", pa.int64()), pa.array(_tile_ids(table))),
    ]
    for band, stem in _q1_band_names(table).items():
        out.append(_flux_field(f"mer_flux_{stem}", table.column(f"flux_{band}").combine_chunks()))
        out.append(_flux_field(f"mer_fluxerr_{stem}", table.column(f"fluxerr_{band}").combine_chunks()))
    out.append((pa.field("phz_phz_median", table.schema.field("redshift").type),
                table.column("redshift").combine_chunks()))
    vis_name = "truth_flux_euclid_vis" if "truth_flux_euclid_vis" in table.column_names else "flux_euclid_vis"
    base = np.abs(table.column(vis_name).to_numpy()) + 1e-3
    out.append(_flux_field("mer_flux_detection_total", pa.array(base)))
    out.append(_flux_field("mer_fluxerr_detection_total", pa.array(0.05 * base)))
    for stem in [f"{letter}_templfit" for letter in _NISP] + [
            stem for stem in _q1_band_names(table).values() if "_ext_" in stem]:
        # one VIS-to-band template flux per TEMPLFIT band, externals included: the total-flux
        # correction scales every TEMPLFIT band by VIS_total / FLUX_VIS_TO_<band>_TEMPLFIT
        factor = rng.uniform(0.9, 1.0, n)
        out.append(_flux_field(f"mer_flux_vis_to_{stem}", pa.array(base * factor)))
    out.append((pa.field("mer_point_like_flag", pa.int32()),
                pa.array((rng.random(n) < 0.1).astype(np.int32))))
    return out


def _tile_ids(table: pa.Table) -> np.ndarray:
    """MER-like tile ids (int64): 0.5° cells of the sky, numbered like ``102018211``."""
    ra = table.column("ra").to_numpy()
    dec = table.column("dec").to_numpy()
    cell = np.floor((dec + 90.0) / 0.5).astype(np.int64) * 720 + np.floor(ra / 0.5).astype(np.int64)
    return 102_000_000 + cell


def irsa_extra_columns(n_rows: int, count: int, *, seed: int,
                       types: Sequence[str] = EXTRA_TYPES) -> list[tuple[pa.Field, pa.Array]]:
    """``count`` filler columns in IRSA's naming (``<table prefix><stem>_<k>``), types cycling ``types``.

    Column ``k`` is drawn from its own generator (``[seed, k]``), so a chunk of a large catalog
    can be made independently of the others.
    """
    unknown = sorted(set(types) - set(EXTRA_TYPES))
    if unknown or not types:
        raise ValueError(f"types must be a non-empty subset of {EXTRA_TYPES}, not {tuple(types)}")
    out: list[tuple[pa.Field, pa.Array]] = []
    for k in range(count):
        prefix = IRSA_PREFIXES[k % len(IRSA_PREFIXES)]
        stem = _STEMS[(k // len(IRSA_PREFIXES)) % len(_STEMS)]
        kind = types[k % len(types)]
        values = _random_column(np.random.default_rng([seed, k]), n_rows, kind)
        out.append((pa.field(f"{prefix}{stem}_{k:04d}", values.type), values))
    return out


def _random_column(rng: np.random.Generator, n: int, kind: str) -> pa.Array:
    if kind == "float32":
        return pa.array(rng.random(n, dtype=np.float32))
    if kind == "float64":
        return pa.array(rng.normal(size=n))
    if kind == "int32":
        return pa.array(rng.integers(-1000, 1000, n, dtype=np.int32))
    if kind == "int16":
        return pa.array(rng.integers(0, 64, n, dtype=np.int16))
    if kind == "bool":
        return pa.array(rng.random(n) < 0.5)
    return pa.array(np.array(["STAR", "GALAXY", "QSO", ""], dtype=object)[rng.integers(0, 4, n)],
                    pa.string())


def irsa_like_table(table: pa.Table, *, extra_columns: int = 500, seed: int,
                    extra_types: Sequence[str] = EXTRA_TYPES) -> pa.Table:
    """A mock Euclid table (with positions) in the names of IRSA's Euclid Q1 merged-objects HATS.

    ``object_id`` (int64), ``ra``, ``dec``, ``tileid``, ``mer_flux[err]_vis_psf``,
    ``mer_flux[err]_{y,j,h}_templfit``, ``mer_flux[err]_<b>_ext_lsst_templfit`` (µJy, field
    metadata ``unit: uJy``), ``phz_phz_median`` (the mock redshift), the total-flux-correction
    columns (module docstring) and ``extra_columns`` filler columns of mixed types.
    """
    columns = _q1_core(table, seed) + irsa_extra_columns(
        table.num_rows, extra_columns, seed=seed, types=extra_types)
    fields, arrays = zip(*columns)
    return pa.Table.from_arrays(list(arrays), schema=pa.schema(list(fields)))


def _mer_name(irsa_name: str) -> str:
    special = {"object_id": "OBJECT_ID", "ra": "RIGHT_ASCENSION", "dec": "DECLINATION",
               "tileid": "TILEID", "phz_phz_median": "REDSHIFT"}
    if irsa_name in special:
        return special[irsa_name]
    return irsa_name.removeprefix("mer_").upper()


def mer_like_table(table: pa.Table, *, with_redshift: bool = True, seed: int = 0) -> pa.Table:
    """A mock Euclid table (with positions) in the native MER catalogue's names.

    ``OBJECT_ID``, ``RIGHT_ASCENSION``, ``DECLINATION``, ``FLUX[ERR]_VIS_PSF``,
    ``FLUX[ERR]_{Y,J,H}_TEMPLFIT``, ``FLUX[ERR]_<B>_EXT_LSST_TEMPLFIT``, the total-flux
    correction columns and ``POINT_LIKE_FLAG``. The MER catalogue has no redshift; with
    ``with_redshift`` the mock's is added as ``REDSHIFT`` (the column the ``euclid-q1`` profile
    reads when a user has joined one).
    """
    core = [(f.with_name(_mer_name(f.name)), a) for f, a in _q1_core(table, seed)
            if with_redshift or f.name != "phz_phz_median"]
    fields, arrays = zip(*core)
    return pa.Table.from_arrays(list(arrays), schema=pa.schema(list(fields)))


# --------------------------------------------------------------------------------------------
# FITS tiles
# --------------------------------------------------------------------------------------------
def fits_tile_name(index: int) -> str:
    """A MER-like tile file name (``EUC_MER_FINAL-CAT_TILE<id>-<hash>_<date>_00.00.fits``)."""
    return f"EUC_MER_FINAL-CAT_TILE{102018211 + index}-{index:06X}_20250301T000000.000000Z_00.00.fits"


def is_flux_column(name: str) -> bool:
    """Whether a column holds a flux or flux error (and so gets a unit): generic, IRSA or MER names."""
    lower = name.lower().removeprefix("mer_")
    return lower.startswith(("flux_", "fluxerr_"))


def write_fits_tile(table: pa.Table, path: Path, *, units: str = FLUX_UNIT,
                    drop_columns: Sequence[str] = ()) -> Path:
    """``table`` as one FITS binary table: int64 as ``K``, ``TUNIT`` = ``units`` on flux columns."""
    from astropy.table import Table

    out = Table()
    for name in table.column_names:
        if name in drop_columns:
            continue
        column = table.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            out[name] = np.asarray(column.to_pylist(), dtype=str)
        else:
            out[name] = column.to_numpy()
        if is_flux_column(name):
            out[name].unit = units
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.write(path, format="fits", overwrite=False)
    return path


def write_fits_tiles(table: pa.Table, out_dir: Path, *, n_tiles: int, units: str = FLUX_UNIT,
                     drop_columns: Mapping[int, Sequence[str]] | None = None) -> list[Path]:
    """Split ``table``'s rows in order into ``n_tiles`` FITS files under ``out_dir``.

    ``drop_columns`` maps a tile index to columns that tile leaves out (e.g. an external band
    not observed in that field, to exercise ``optional: true`` bands).
    """
    if not 1 <= n_tiles <= max(table.num_rows, 1):
        raise ValueError(f"n_tiles must lie in [1, {table.num_rows}], not {n_tiles}")
    drops = drop_columns or {}
    bounds = np.linspace(0, table.num_rows, n_tiles + 1).astype(np.int64)
    return [
        write_fits_tile(table.slice(int(bounds[k]), int(bounds[k + 1] - bounds[k])),
                        Path(out_dir) / fits_tile_name(k), units=units,
                        drop_columns=drops.get(k, ()))
        for k in range(n_tiles)
    ]
