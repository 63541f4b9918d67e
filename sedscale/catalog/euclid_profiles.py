"""The Euclid Q1 profiles: the MER catalogue's native names and IRSA's HATS "merged objects" names.

Both read the same measurements (µJy): VIS PSF flux, NISP Y/J/H and external u…z template fits,
the latter ``optional`` (which external surveys cover a tile varies by field). IRSA's names are the
native ones lower-cased with the table prefix ``mer_`` (``FLUX_Y_TEMPLFIT`` → ``mer_flux_y_templfit``),
so one builder serves both through a :class:`EuclidNaming`.

With ``total_flux`` the MER Photometry Cookbook's correction is applied to every TEMPLFIT band X:
``X_total = FLUX_X_TEMPLFIT × VIS_total / FLUX_VIS_TO_X_TEMPLFIT`` (error × the same factor), and
the fitted VIS band is ``VIS_total`` itself — chosen by ``vis_flux`` (``auto``: ``FLUX_VIS_PSF``
where ``POINT_LIKE_FLAG == 1``, ``FLUX_DETECTION_TOTAL`` elsewhere). It is written with the
profile model's generic :class:`FlagChoice` and :class:`FluxScale`, so a user YAML can say the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import pyarrow as pa

from sedscale.bands import BUILTIN_BANDS
from sedscale.catalog.profile_model import BandColumn, CatalogProfile, ColumnRef, FlagChoice, FluxScale
from sedscale.catalog.profile_options import ProfileOptions
from sedscale.errors import CatalogError

_NISP = {"Y": "euclid_y", "J": "euclid_j", "H": "euclid_h"}
_EXT = re.compile(r"^FLUX_([UGRIZ])_EXT_([A-Z]+)_TEMPLFIT$")
_EXT_INSTRUMENTS = {"DECAM": "decam", "MEGACAM": "megacam", "HSC": "hsc", "PANSTARRS": "panstarrs", "LSST": "lsst"}
_PSF = ("FLUX_VIS_PSF", "FLUXERR_VIS_PSF")
_TOTAL = ("FLUX_DETECTION_TOTAL", "FLUXERR_DETECTION_TOTAL")
_POINT_LIKE = "POINT_LIKE_FLAG"


@dataclass(frozen=True)
class EuclidNaming:
    """How one distribution spells the MER columns, and where it keeps id, position and redshift."""

    profile: str
    id: str
    positions: tuple[tuple[str, str], ...]  # (ra, dec) candidates, first present wins
    redshifts: tuple[str, ...]  # redshift candidates, first present wins
    actual: Callable[[str], str]  # native MER name → this distribution's name
    native: Callable[[str], Optional[str]]  # this distribution's name → native (None: not MER)


def _irsa_native(name: str) -> Optional[str]:
    return name[4:].upper() if name.startswith("mer_") else None


NATIVE = EuclidNaming("euclid-q1", "OBJECT_ID", (("RIGHT_ASCENSION", "DECLINATION"),),
                      ("REDSHIFT", "redshift"), actual=lambda n: n, native=lambda n: n)
IRSA = EuclidNaming("euclid-q1-irsa", "object_id", (("ra", "dec"), ("mer_right_ascension", "mer_declination")),
                    ("phz_phz_median",), actual=lambda n: "mer_" + n.lower(), native=_irsa_native)


@dataclass(frozen=True)
class _Context:
    """One resolution: the naming, the native names present, the options, the source for messages."""

    naming: EuclidNaming
    present: frozenset[str]  # native names present in the schema
    options: ProfileOptions
    source: str

    def col(self, native: str) -> str:
        return self.naming.actual(native)

    def need(self, native: str, option: str) -> str:
        """The actual name of a column an option needs; stop, naming column and option, without it."""
        if native not in self.present:
            raise CatalogError(
                f"{self.source}: column {self.col(native)!r} is needed by option {option} of profile "
                f"{self.naming.profile!r}, and the catalog has no such column"
            )
        return self.col(native)


def _vis_refs(ctx: _Context) -> Optional[tuple[ColumnRef, ColumnRef]]:
    """The VIS band's flux and error: PSF, Kron total, or per row by the point-like flag."""
    choice = ctx.options.effective_vis_flux()
    if choice == "psf" and not ctx.options.total_flux:
        return (ctx.col(_PSF[0]), ctx.col(_PSF[1])) if _PSF[0] in ctx.present else None
    option = f"total_flux (vis_flux={choice})" if ctx.options.total_flux else f"vis_flux={choice}"
    if choice == "psf":
        return ctx.need(_PSF[0], option), ctx.need(_PSF[1], option)
    if choice == "total":
        return ctx.need(_TOTAL[0], option), ctx.need(_TOTAL[1], option)
    flag = ctx.need(_POINT_LIKE, option)
    flux = FlagChoice(flag=flag, flagged=ctx.need(_PSF[0], option), unflagged=ctx.need(_TOTAL[0], option))
    error = FlagChoice(flag=flag, flagged=ctx.need(_PSF[1], option), unflagged=ctx.need(_TOTAL[1], option))
    return flux, error


def _templfit_bands(present: frozenset[str]) -> list[tuple[str, str, bool]]:
    """(X, band name, optional) for each TEMPLFIT band present: NISP first, then externals."""
    out = [(letter, band, False) for letter, band in _NISP.items() if f"FLUX_{letter}_TEMPLFIT" in present]
    for native in sorted(present):
        match = _EXT.match(native)
        if not match:
            continue
        letter, instrument = match.groups()
        prefix = _EXT_INSTRUMENTS.get(instrument)
        band = f"{prefix}_{letter.lower()}" if prefix else ""
        if band in BUILTIN_BANDS:  # an instrument/band without a shipped curve is not fitted (docs)
            out.append((f"{letter}_EXT_{instrument}", band, True))
    return out


def _templfit_band(ctx: _Context, x: str, band: str, optional: bool, vis: Optional[ColumnRef]) -> BandColumn:
    flux, error = f"FLUX_{x}_TEMPLFIT", f"FLUXERR_{x}_TEMPLFIT"
    if error not in ctx.present:
        raise CatalogError(f"{ctx.source}: column {ctx.col(flux)!r} has no error column {ctx.col(error)!r}")
    scale = None
    if ctx.options.total_flux and vis is not None:
        scale = FluxScale(numerator=vis, denominator=ctx.need(f"FLUX_VIS_TO_{x}_TEMPLFIT", "total_flux"))
    return BandColumn(column=ctx.col(flux), error=ctx.col(error), filter=band, optional=optional, scale=scale)


def euclid_profile(naming: EuclidNaming, schema: pa.Schema, options: ProfileOptions, source: str) -> CatalogProfile:
    """The Euclid profile for ``schema`` in ``naming``'s spelling, with ``options`` applied."""
    names = set(schema.names)
    if naming.id not in names:
        raise CatalogError(f"{source}: no id column {naming.id!r} (profile {naming.profile!r})")
    present = frozenset(n for n in (naming.native(c) for c in names) if n)
    ctx = _Context(naming, present, options, source)
    vis = _vis_refs(ctx)
    if vis is not None and isinstance(vis[1], str) and vis[1] not in names:
        raise CatalogError(f"{source}: column {vis[0]!r} has no error column {vis[1]!r}")
    bands = [BandColumn(column=vis[0], error=vis[1], filter="euclid_vis")] if vis else []
    bands += [_templfit_band(ctx, x, band, optional, vis[0] if vis else None)
              for x, band, optional in _templfit_bands(present)]
    if not bands:
        raise CatalogError(f"{source}: no recognisable Euclid band column (e.g. {ctx.col(_PSF[0])!r}) "
                           f"for profile {naming.profile!r}")
    ra, dec = next(((r, d) for r, d in naming.positions if r in names and d in names), (None, None))
    redshift = next((z for z in naming.redshifts if z in names), None)
    return CatalogProfile(name=naming.profile, id=naming.id, redshift=redshift, ra=ra, dec=dec, bands=bands)
