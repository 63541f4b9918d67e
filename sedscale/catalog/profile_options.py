"""Options of the built-in survey profiles, as a user YAML's ``extends:`` gives them.

One model for all of them (each built-in says which it accepts), so a misspelt or misplaced
option is refused by name rather than silently ignored.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

VisFlux = Literal["auto", "psf", "total"]

#: romancal's photometry families: Kron, PSF fit, isophotal, circular aperture of radius NN/10″
_FAMILY = re.compile(r"^(kron|psf|segment|aper\d{2})$")


class ProfileOptions(BaseModel):
    """Options a built-in profile may take; ``None`` means "the profile's default"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total_flux: bool = Field(
        False, description="Euclid: the MER cookbook's total-flux correction of TEMPLFIT fluxes")
    vis_flux: Optional[VisFlux] = Field(
        None, description="Euclid: the VIS flux fitted — auto (PSF if point-like, else Kron total), "
                          "psf, total; default psf without total_flux, auto with it")
    family: Optional[str] = Field(
        None, description="Roman: kron (default), psf, segment or aper<NN> (radius NN/10 arcsec)")

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _FAMILY.match(value):
            raise ValueError(f"family {value!r} is not kron, psf, segment or aper<NN> (e.g. aper04)")
        return value

    def given(self) -> set[str]:
        """The options set explicitly (to refuse those a profile does not take)."""
        return set(self.model_fields_set)

    def effective_vis_flux(self) -> VisFlux:
        """The VIS flux actually fitted: explicit choice, else ``auto`` with the correction."""
        if self.vis_flux is not None:
            return self.vis_flux
        return "auto" if self.total_flux else "psf"


OPTION_NAMES: tuple[str, ...] = tuple(ProfileOptions.model_fields)
