"""``sedscale zero-points``: per-band zero points self-calibrated from a catalog's known redshifts.

It wraps :func:`sedscale.sed.zero_points.self_calibrate` (eazy's recipe: fit the spec-z sources at
their redshift, multiply each band's zero point by the median best-fit model / observed flux over
the sources detected in it, a few rounds) and writes the profile back with each band's
``zero_point`` set, ready for ``sedscale fit`` or ``submit``. The profile's own zero points are
applied before the calibration, so the written ones are their product with the new offsets.

Score photo-z only on sources that did not calibrate the zero points (``--exclude-ids``), or the
score is flattered by the spec-z it calibrated on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from sedscale.commands._help import CATALOG_HELP

if TYPE_CHECKING:
    from sedscale.campaign.workflow import Workflow
    from sedscale.catalog.photometry import Photometry
    from sedscale.catalog.profiles import CatalogProfile
    from sedscale.catalog.source import CatalogSource


def zero_points(
    catalog: List[str] = typer.Argument(..., help=CATALOG_HELP),
    profile: str = typer.Option(..., "--profile", "-p", help="profile mapping the id, the bands and the (spectroscopic) redshift column: shipped name or FILE.yaml"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the profile with the zero points here as YAML (default: print it to stdout; the summary goes to stderr)"),
    workflow: Optional[str] = typer.Option(None, "--workflow", "-w", help="workflow whose fit grid calibrates (default: default)"),
    rounds: int = typer.Option(3, "--rounds", min=1, help="calibration rounds (eazy's demo uses 3)"),
    min_snr: float = typer.Option(5.0, "--min-snr", help="a band's offset uses the sources detected at this S/N (> 0) in it"),
    exclude_ids: Optional[Path] = typer.Option(None, "--exclude-ids", help="text file of source ids (one per line) kept out of the calibration, e.g. the sources you will score photo-z on"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="grid cache (default: $SEDSCALE_CACHE_DIR/grids or ~/.cache/sedscale/grids)"),
) -> None:
    """Self-calibrate per-band zero points from the rows of CATALOG with a known redshift."""
    import numpy as np

    from sedscale.cache_dirs import grid_cache_dir
    from sedscale.campaign.workflow import load_workflow
    from sedscale.catalog.catalog_input import catalog_arg, open_for_profile
    from sedscale.commands._common import make_console
    from sedscale.errors import ConfigError
    from sedscale.sed.zero_points import self_calibrate

    if not min_snr > 0:
        raise ConfigError(f"--min-snr {min_snr:g}: must be > 0 (a band's offset divides by detected fluxes)")
    wf = load_workflow(workflow)
    source, prof = open_for_profile(catalog_arg(catalog), profile)
    if not prof.redshift:
        raise ConfigError(f"profile {prof.name}: maps no redshift column; zero points calibrate on known redshifts")
    phot = _known_redshift_photometry(source, prof, wf, _read_ids(exclude_ids) if exclude_ids else None)
    if len(phot) == 0:
        raise ConfigError(f"{source.name}: no valid row with a redshift in {prof.redshift!r} to calibrate on")
    cache = cache_dir or grid_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    console = make_console(stderr=True)  # stdout carries only the profile's YAML
    with console.status(f"calibrating on {len(phot):,} sources, {rounds} rounds"):
        new = self_calibrate(phot, wf.fit, rounds=rounds, min_snr=min_snr, cache_dir=cache)
    unusable = [band.label for band, zp in zip(prof.bands, new) if not (np.isfinite(zp) and zp > 0)]
    if unusable:
        raise ConfigError(f"{source.name}: no usable zero point for {', '.join(unusable)} "
                          "(no finite, positive median model/observed ratio); check the band's fluxes")
    with np.errstate(invalid="ignore", divide="ignore"):
        detected = (phot.flux / phot.error >= min_snr) & ~phot.limits
    console.print(f"zero points from {len(phot):,} sources of {source.name} with a redshift "
                  f"(× the profile's own; a band with no source at S/N ≥ {min_snr:g} keeps 1):")
    for band, zp, n in zip(prof.bands, new, detected.sum(axis=0)):
        console.print(f"  {band.label:24s} {zp:8.4f}  ({int(n):,} sources)")
    text = calibrated_profile_yaml(prof, [b.zero_point * z for b, z in zip(prof.bands, new)])
    if output is None:
        print(text, end="")
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


def calibrated_profile_yaml(profile: CatalogProfile, zero_points: List[float]) -> str:
    """The whole profile as YAML with each band's ``zero_point`` replaced (filters as absolute
    paths or built-in names, so the file loads from anywhere)."""
    import yaml

    from sedscale.catalog.profiles import zero_point_snippet

    head = profile.model_dump(mode="json", exclude_defaults=True, exclude={"bands", "name"})
    bands = yaml.safe_load(zero_point_snippet(profile, zero_points))["bands"]
    header = f"# profile {profile.name} with zero points self-calibrated by `sedscale zero-points`\n"
    return header + yaml.safe_dump(head | {"bands": bands}, sort_keys=False, allow_unicode=True)


def _read_ids(path: Path) -> set[int]:
    """Source ids, one per line (blank lines and # comments ignored)."""
    from sedscale.errors import ConfigError

    ids: set[int] = set()
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError as exc:
        raise ConfigError(f"--exclude-ids {path}: no such file") from exc
    for n, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            ids.add(int(text))
        except ValueError as exc:
            raise ConfigError(f"--exclude-ids {path}, line {n}: {text!r} is not an integer source id") from exc
    return ids


def _known_redshift_photometry(source: CatalogSource, profile: CatalogProfile, wf: Workflow,
                               exclude: Optional[set[int]]) -> Photometry:
    """The catalog's valid rows with a redshift (validated as ``fit`` validates them), less the
    excluded ids. Calibration samples are spec-z subsets: they are read whole."""
    import dataclasses

    import numpy as np

    from sedscale.catalog.photometry import Photometry
    from sedscale.catalog.plan import plan_partitions
    from sedscale.catalog.scan import validated_partitions

    excluded = np.fromiter(exclude or (), np.int64)
    parts = []
    for part, outcome in validated_partitions(source, profile, plan_partitions(source, 50_000), wf.validation_rules()):
        phot = outcome.photometry
        phot = dataclasses.replace(phot, row_index=phot.row_index + part.row_start)  # rows of the catalog
        keep = np.isfinite(phot.redshift) & ~np.isin(phot.source_id, excluded)
        parts.append(phot.take(np.flatnonzero(keep)))
    return Photometry.concat(parts)


def register(app: typer.Typer) -> None:
    """Add the ``zero-points`` command to the root app."""
    app.command("zero-points")(zero_points)
