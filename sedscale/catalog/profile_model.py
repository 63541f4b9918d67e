"""The column map every profile resolves to: id, redshift, position and, per band, where its flux is.

Built-in survey profiles (:mod:`sedscale.catalog.survey_profiles`) and user YAML files both end
as one :class:`CatalogProfile`, so the rest of sedscale never branches on a profile's name.

A band's flux is usually one column. Two generic additions let a profile express a survey's own
recipe without code (the Euclid MER cookbook's total-flux correction is written with them):

* a **per-row choice** of column by a flag column (:class:`FlagChoice`): where ``flag == 1`` the
  row reads ``flagged``, elsewhere ``unflagged`` — e.g. the VIS PSF flux for point-like sources
  and the Kron total flux for extended ones;
* a **scale** (:class:`FluxScale`): flux and error are multiplied by ``numerator / denominator``
  of the same row — e.g. a template-fit flux brought to a total flux.

Calibrations and limits (issue 15) are keys too: a per-band multiplicative ``zero_point``, a
per-band ``limit_flag`` column (where set, the flux column holds an upper limit whose 1σ width
is the error column, or ``limit / limit_sigma`` where the error is missing), the profile-wide
``upper_limits: negative_error`` (CIGALE's convention: a negative error marks the flux as an upper
limit of width ``|error|``) and ``ebv``, a per-source Milky Way E(B−V) column.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sedscale.catalog.units import FLUX_UNITS


class FlagChoice(BaseModel):
    """A column chosen per row: ``flagged`` where the ``flag`` column equals 1, else ``unflagged``.

    A null or any other flag value reads ``unflagged``, so a flag column a file lacks (read as
    all-null) falls back to the ordinary column rather than inventing point sources.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    flag: str
    flagged: str
    unflagged: str

    def __str__(self) -> str:
        return f"{self.flagged} where {self.flag}=1 else {self.unflagged}"


#: a column name, or a per-row choice of column
ColumnRef = Union[str, FlagChoice]


def ref_names(ref: ColumnRef) -> tuple[str, ...]:
    """Every column a reference reads (a choice reads its flag too)."""
    if isinstance(ref, FlagChoice):
        return (ref.flag, ref.flagged, ref.unflagged)
    return (ref,)


def ref_value_names(ref: ColumnRef) -> tuple[str, ...]:
    """The columns whose *values* a reference may return (not the flag): these carry its unit."""
    if isinstance(ref, FlagChoice):
        return (ref.flagged, ref.unflagged)
    return (ref,)


class FluxScale(BaseModel):
    """Multiply a band's flux and error by ``numerator / denominator`` (same row, same unit).

    A row whose factor is not finite and positive (a missing or non-positive denominator) has the
    band "not observed": a sign-flipped or infinite flux would be worse than none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    numerator: ColumnRef
    denominator: ColumnRef

    def __str__(self) -> str:
        return f"{self.numerator} / {self.denominator}"


class BandColumn(BaseModel):
    """One band: its flux and error columns, their unit, its filter, and how to read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: ColumnRef
    error: ColumnRef
    unit: str = "uJy"
    filter: str = Field(description="a built-in band name or a filter file (Å, throughput)")
    optional: bool = Field(False, description="a band absent from some files is 'not observed', not a fault")
    scale: Optional[FluxScale] = Field(None, description="flux and error × numerator/denominator, per row")
    zero_point: float = Field(1.0, description="multiplies flux and error (after conversion to µJy)")
    limit_flag: Optional[str] = Field(None, description="flag column: where 1/true the flux is an upper limit")
    limit_sigma: float = Field(1.0, gt=0, description="the limit is this many σ (σ = limit / limit_sigma "
                                                       "where the error column has no value)")

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if value not in FLUX_UNITS:
            raise ValueError(f"unit {value!r} is not one of {', '.join(FLUX_UNITS)}")
        return value

    @model_validator(mode="after")
    def _positive_zero_point(self) -> BandColumn:
        """A zero point ≤ 0 (or NaN) would flip or erase every flux of the band: refused at load."""
        if not self.zero_point > 0:
            raise ValueError(f"band {self.label} ({self.filter}): zero_point {self.zero_point:g} must be > 0")
        return self

    @property
    def label(self) -> str:
        """How messages name the band's flux: the column, and the scale where there is one."""
        return f"{self.column} × {self.scale}" if self.scale else str(self.column)

    @property
    def error_label(self) -> str:
        """How messages name the band's error."""
        return f"{self.error} × {self.scale}" if self.scale else str(self.error)

    def column_names(self) -> tuple[str, ...]:
        """Every column reading this band needs, in a stable order without repeats."""
        names = list(ref_names(self.column)) + list(ref_names(self.error))
        if self.scale:
            names += list(ref_names(self.scale.numerator)) + list(ref_names(self.scale.denominator))
        if self.limit_flag:
            names.append(self.limit_flag)
        return tuple(dict.fromkeys(names))

    def flux_like_names(self) -> tuple[str, ...]:
        """The columns holding fluxes (in :attr:`unit`): everything but flag columns."""
        refs: list[ColumnRef] = [self.column, self.error]
        if self.scale:
            refs += [self.scale.numerator, self.scale.denominator]
        return tuple(dict.fromkeys(n for ref in refs for n in ref_value_names(ref)))


class CatalogProfile(BaseModel):
    """The column map of a catalog; ``filters`` are built-in names or absolute file paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "user"
    id: str
    redshift: Optional[str] = None
    ra: Optional[str] = Field(None, description="right ascension column (degrees), carried into the results")
    dec: Optional[str] = Field(None, description="declination column (degrees), carried into the results")
    bands: list[BandColumn] = Field(min_length=1)
    ebv: Optional[str] = Field(None, description="Milky Way E(B−V) column (mag); fluxes are dereddened")
    upper_limits: Literal["flag", "negative_error"] = Field(
        "flag", description="negative_error: a negative error marks the flux as an upper limit (CIGALE)")

    def columns(self) -> list[str]:
        """The columns to project when reading: id, redshift, position, E(B−V), then each band's."""
        cols = [self.id] + [c for c in (self.redshift, self.ra, self.dec, self.ebv) if c]
        for band in self.bands:
            cols.extend(band.column_names())
        return list(dict.fromkeys(cols))

    def optional_columns(self) -> frozenset[str]:
        """Columns a file may lack: those only ``optional`` bands read (absent = not observed).

        A column a required band also reads (a shared flag, say) stays required.
        """
        required = {c for band in self.bands if not band.optional for c in band.column_names()}
        required |= {c for c in (self.id, self.redshift, self.ra, self.dec, self.ebv) if c}
        return frozenset(c for band in self.bands if band.optional for c in band.column_names()
                         if c not in required)

    def filters(self) -> tuple[str, ...]:
        return tuple(band.filter for band in self.bands)

    def expected_units(self) -> list[tuple[str, str]]:
        """``(column, unit)`` for every column whose recorded unit must agree with this profile:
        each band's flux, error and scale columns in its unit, ``ra``/``dec`` in degrees (flag, id
        and redshift columns carry no unit to check)."""
        out = [(column, band.unit) for band in self.bands for column in band.flux_like_names()]
        out += [(column, "deg") for column in (self.ra, self.dec) if column]
        return list(dict.fromkeys(out))
