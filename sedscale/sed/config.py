"""The fit configuration: which physics modules are on and which parameter values the grid spans.

Written like a CIGALE ini file — for every parameter a list of values, the model grid being their
Cartesian product — so an agent action is a small, discrete edit ("add av 2.5", "turn the AGN on")
and every configuration has a stable content hash under which its grid is cached.

Physical bounds live in one registry, :data:`PARAMETER_BOUNDS` (``"section.field"`` → bounds),
read by validation here and by the agent's action schema, so the two can never disagree.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sedscale.errors import ConfigError

#: ``astropy.cosmology.realizations.available``, written out: importing astropy.cosmology takes
#: 1-2 s, and every workflow is validated in the driver before a campaign starts (a test keeps
#: the list equal to astropy's).
ASTROPY_REALIZATIONS = ("WMAP1", "WMAP3", "WMAP5", "WMAP7", "WMAP9", "Planck13", "Planck15", "Planck18")

SCHEMA_VERSION = 1  # bump when the meaning of a field changes; part of the hash

#: The star-formation history families and attenuation laws a configuration may name (the
#: agent's action schema offers the same sets).
SFHFamilyName = Literal["delayed", "exponential", "constant", "delayed_burst"]
DustLawName = Literal["calzetti", "modified_starburst", "smc"]


@dataclass(frozen=True)
class Bound:
    """Physical range of one grid parameter (inclusive), with its unit and meaning."""

    min: float
    max: float
    unit: str
    description: str

    def __iter__(self):  # so ``lo, hi, unit, desc = PARAMETER_BOUNDS[k]`` works
        return iter((self.min, self.max, self.unit, self.description))


#: Every grid parameter: ``"section.field"`` → (min, max, unit, description). The limits are those
#: of the underlying data (BC03 metallicities, Cloudy logU, Draine & Li U_min / q_PAH) or of the
#: physics (ages within a Hubble time, fractions in [0, 1]).
PARAMETER_BOUNDS: dict[str, Bound] = {
    "sfh.age": Bound(0.001, 13.8, "Gyr", "time since star formation began (delayed, exponential, constant)"),
    "sfh.tau": Bound(0.01, 100.0, "Gyr", "e-folding time of the exponential / delayed-tau SFH"),
    "sfh.burst_age": Bound(1.0, 500.0, "Myr", "age of the young burst (constant SFR over this time)"),
    "sfh.burst_fraction": Bound(0.0, 0.99, "", "fraction of the formed mass in the young burst"),
    "stellar.metallicity": Bound(0.005, 5.0, "Z_sun", "stellar (and gas) metallicity; BC03 grid spans 0.005-5 Z_sun, Z_sun=0.02"),
    "dust_attenuation.av": Bound(0.0, 10.0, "mag", "V-band attenuation of stars older than 10 Myr"),
    "dust_attenuation.delta": Bound(-1.2, 0.6, "", "power-law slope change of the modified-starburst law (lambda/5500 A)^delta"),
    "dust_attenuation.bump": Bound(0.0, 10.0, "", "amplitude of the 2175 A Drude bump (CIGALE uv_bump_amplitude; MW ~3)"),
    "dust_attenuation.young_factor": Bound(1.0, 5.0, "", "A_V multiplier for stars younger than 10 Myr (birth clouds)"),
    "nebular.logu": Bound(-4.0, -1.0, "dex", "log10 ionisation parameter of the Cloudy grid"),
    "dust_emission.umin": Bound(0.1, 20.0, "", "Draine & Li minimum radiation-field intensity U_min"),
    "dust_emission.qpah": Bound(0.1, 4.58, "%", "Draine & Li PAH mass fraction q_PAH"),
    "dust_emission.gamma": Bound(0.0, 1.0, "", "Draine & Li fraction of dust heated by U_min<U<U_max"),
    "agn.frac_agn": Bound(0.0, 0.99, "", "AGN share of the total IR luminosity (agn.fraction_at dust), or of the total rest-frame lambda L_lambda at agn.fraction_at Angstrom"),
    "agn.av_agn": Bound(0.0, 10.0, "mag", "V-band extinction (SMC law) of the AGN accretion disk"),
    "redshift.z_min": Bound(0.0, 15.0, "", "lowest redshift of the photo-z grid"),
    "redshift.z_max": Bound(0.01, 15.0, "", "highest redshift of the photo-z grid"),
    "redshift.dlog1pz": Bound(1e-4, 0.1, "dex", "photo-z grid step in log10(1+z)"),
    "redshift.node_step": Bound(1e-4, 0.05, "dex", "known-z node spacing in log10(1+z) (interpolated between)"),
    "error_floor": Bound(0.0, 0.5, "", "fractional systematic error added in quadrature to every band"),
}


def _check_values(section: str, field: str, values: list[float]) -> list[float]:
    """Reject empty lists, duplicates and values outside the registered physical range."""
    key = f"{section}.{field}"
    bound = PARAMETER_BOUNDS[key]
    if not values:
        raise ValueError(f"{key}: needs at least one value")
    if len(set(values)) != len(values):
        raise ValueError(f"{key}: duplicate values in {values}")
    bad = [v for v in values if not (bound.min <= v <= bound.max)]
    if bad:
        unit = f" {bound.unit}" if bound.unit else ""
        raise ValueError(
            f"{key}: value(s) {bad} outside the allowed range [{bound.min}, {bound.max}]{unit} "
            f"({bound.description})"
        )
    return [float(v) for v in values]


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors, lists are bounds-checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _section: str = ""

    @model_validator(mode="after")
    def _bounds(self) -> _Section:
        for name, value in self.__dict__.items():
            if isinstance(value, list):
                _check_values(self._section, name, value)
        return self


class SFHConfig(_Section):
    """Star-formation history family and its parameter lists.

    delayed: SFR ∝ t e^{-t/τ}; exponential: SFR ∝ e^{-t/τ}; constant: SFR = const over ``age``;
    delayed_burst: delayed-τ plus a constant-SFR burst over the last ``burst_age`` Myr holding
    ``burst_fraction`` of all formed mass. ``t`` runs from the onset of star formation (``age``
    ago) to the time of observation.
    """

    _section = "sfh"
    family: SFHFamilyName = "delayed"
    age: list[float] = Field(default_factory=lambda: [0.1, 0.3, 0.6, 1.0, 2.0, 3.0, 5.0, 8.0, 11.0])
    tau: list[float] = Field(default_factory=lambda: [0.1, 0.3, 1.0, 3.0, 10.0])
    burst_age: list[float] = Field(default_factory=lambda: [20.0])
    burst_fraction: list[float] = Field(default_factory=lambda: [0.1])


class StellarConfig(_Section):
    """BC03 (MILES, Kroupa 2001 IMF) metallicities in units of Z_sun = 0.02."""

    _section = "stellar"
    metallicity: list[float] = Field(default_factory=lambda: [0.2, 1.0, 2.5])


class DustAttenuationConfig(_Section):
    """Attenuation law and its parameters; ``av`` applies to stars ≥ 10 Myr old,
    ``av * young_factor`` to younger stars (and their nebular emission)."""

    _section = "dust_attenuation"
    enabled: bool = True
    law: DustLawName = "calzetti"
    av: list[float] = Field(default_factory=lambda: [0.0, 0.15, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
    delta: list[float] = Field(default_factory=lambda: [0.0])
    bump: list[float] = Field(default_factory=lambda: [0.0])
    young_factor: list[float] = Field(default_factory=lambda: [1.0])

    @model_validator(mode="after")
    def _law_parameters(self) -> DustAttenuationConfig:
        if self.law != "modified_starburst" and (self.delta != [0.0] or self.bump != [0.0]):
            raise ValueError(
                "dust_attenuation.delta / dust_attenuation.bump apply only to law "
                f"'modified_starburst' (law is {self.law!r}); leave them at [0.0]"
            )
        return self


class NebularConfig(_Section):
    """Cloudy nebular continuum + lines powered by stars younger than 10 Myr."""

    _section = "nebular"
    enabled: bool = True
    logu: list[float] = Field(default_factory=lambda: [-3.0])


class DustEmissionConfig(_Section):
    """Draine & Li (2007) dust emission carrying the energy the attenuation removed."""

    _section = "dust_emission"
    enabled: bool = True
    umin: list[float] = Field(default_factory=lambda: [1.0])
    qpah: list[float] = Field(default_factory=lambda: [2.5])
    gamma: list[float] = Field(default_factory=lambda: [0.01])


#: Rest wavelengths (Å) ``agn.fraction_at`` may name: where the host's attenuated light is
#: defined and not vanishing (rest UV to near-IR).
AGN_REFERENCE_AA = (1000.0, 30000.0)
#: ``agn.fraction_at`` of the wavelength mode the agent switches on (CIGALE's lambda_fracAGN
#: is often set in the optical; 5100 Å is the usual quasar continuum reference).
AGN_DEFAULT_REFERENCE_AA = 5100.0


class AGNConfig(_Section):
    """Accretion disk + hot-dust torus; see docs/PHYSICS.md for the model and its limits.

    ``fraction_at`` says what ``frac_agn`` is a share of: ``"dust"`` (the default, CIGALE's
    original definition) — of the total IR luminosity, so the AGN scales with the host's dust
    luminosity and needs host dust to exist; a rest wavelength in Å (e.g. 5100) — of the total
    (AGN + attenuated galaxy) λL_λ at that wavelength, so a bright disk needs no host dust
    (CIGALE skirtor2016's ``lambda_fracAGN``).
    """

    _section = "agn"
    enabled: bool = False
    frac_agn: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.3, 0.5])
    av_agn: list[float] = Field(default_factory=lambda: [0.0])
    fraction_at: Literal["dust"] | float = "dust"

    @field_validator("fraction_at")
    @classmethod
    def _reference(cls, value: str | float) -> str | float:
        if value == "dust":
            return value
        lo, hi = AGN_REFERENCE_AA
        if not lo <= float(value) <= hi:
            raise ValueError(f"agn.fraction_at: {value} Å outside [{lo:g}, {hi:g}] (or \"dust\")")
        return float(value)

    @property
    def reference_aa(self) -> float | None:
        """The rest wavelength ``frac_agn`` is defined at; None in the IR-luminosity mode."""
        return None if self.fraction_at == "dust" else float(self.fraction_at)


class IGMConfig(_Section):
    """Inoue et al. (2014) mean IGM transmission blueward of Lyα."""

    _section = "igm"
    enabled: bool = True


class RedshiftConfig(_Section):
    """Redshift sampling: photo-z grid (uniform in log10(1+z)) and known-z node spacing."""

    _section = "redshift"
    z_min: float = 0.0
    z_max: float = 6.0
    dlog1pz: float = 0.005
    node_step: float = 0.0005

    @model_validator(mode="after")
    def _scalars(self) -> RedshiftConfig:
        for name in ("z_min", "z_max", "dlog1pz", "node_step"):
            _check_values("redshift", name, [getattr(self, name)])
        if self.z_max <= self.z_min:
            raise ValueError(f"redshift.z_max ({self.z_max}) must exceed redshift.z_min ({self.z_min})")
        return self


class FitConfig(BaseModel):
    """One fit configuration: module switches and per-parameter value lists.

    Its :meth:`hash` names the fit configuration (``fit_config_id``); its :meth:`grid_hash` (the
    same without ``error_floor``) names its model grid in every cache. Two configs that mean the
    same thing (e.g. ``[1]`` and ``[1.0]``) hash the same because values are normalised to floats first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sfh: SFHConfig = Field(default_factory=SFHConfig)
    stellar: StellarConfig = Field(default_factory=StellarConfig)
    dust_attenuation: DustAttenuationConfig = Field(default_factory=DustAttenuationConfig)
    nebular: NebularConfig = Field(default_factory=NebularConfig)
    dust_emission: DustEmissionConfig = Field(default_factory=DustEmissionConfig)
    agn: AGNConfig = Field(default_factory=AGNConfig)
    igm: IGMConfig = Field(default_factory=IGMConfig)
    redshift: RedshiftConfig = Field(default_factory=RedshiftConfig)
    cosmology: str = "Planck18"
    #: Fractional systematic error added in quadrature to every band: the allowance for the
    #: mismatch between a grid's discrete models and real galaxies, so it belongs to the grid.
    #: 0.07 is the smallest step (of 0.05, 0.06, 0.07, 0.08) at which the *default* grid's
    #: log M* 16–84% intervals hold the truth for 55–80% of independent (bagpipes) mocks with a
    #: 2σ margin on every sample — 0.49–0.51 at 0.05, 0.545–0.58 at 0.06, 0.63–0.64 at 0.07
    #: (docs/FITTER.md, "Calibration"); a denser grid needs less (the calibration grid states
    #: 0.05). Photo-z mode uses its own floor (PhotozOptions).
    error_floor: float = 0.07

    @field_validator("cosmology")
    @classmethod
    def _known_cosmology(cls, value: str) -> str:
        if value not in ASTROPY_REALIZATIONS:
            raise ValueError(f"cosmology: {value!r} is not an astropy realization ({', '.join(ASTROPY_REALIZATIONS)})")
        return value

    @field_validator("error_floor")
    @classmethod
    def _floor(cls, value: float) -> float:
        b = PARAMETER_BOUNDS["error_floor"]
        if not (b.min <= value <= b.max):
            raise ValueError(f"error_floor: {value} outside the allowed range [{b.min}, {b.max}]")
        return float(value)

    # --- identity -------------------------------------------------------------------------
    def canonical_json(self, *, without: tuple[str, ...] = ()) -> str:
        """The config as canonical JSON (sorted keys, floats), the input of :meth:`hash`; the
        top-level fields in ``without`` left out (:meth:`grid_hash` leaves out the floor)."""
        config = self.model_dump(mode="json", exclude=set(without))
        if config["agn"]["fraction_at"] == "dust":  # the default: hashes from before the field stay
            del config["agn"]["fraction_at"]
        payload = {"schema": SCHEMA_VERSION, "config": config}
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        """Stable sha256 hex digest of the canonical JSON; names the fit configuration
        (``fit_config_id``). Grid caches use :meth:`grid_hash`."""
        return self.digest

    @functools.cached_property
    def digest(self) -> str:
        """:meth:`hash`, computed once: the model is frozen, and the agent hashes configs hundreds
        of thousands of times per partition when it ranks candidate actions. (A cached property
        lives outside the model's fields, so equality and dumps ignore it.)"""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def grid_hash(self) -> str:
        """sha256 of the configuration without ``error_floor``: what a model grid depends on.

        The floor weighs the data, not the models, so configurations that differ only in it share
        their grids and every grid cache (a new floor rebuilds nothing); :meth:`hash` still tells
        them apart as fit configurations (``fit_config_id``)."""
        return self.grid_digest

    @functools.cached_property
    def grid_digest(self) -> str:
        """:meth:`grid_hash`, computed once (as :attr:`digest`)."""
        return hashlib.sha256(self.canonical_json(without=("error_floor",)).encode()).hexdigest()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy, without the cached digests (an ``update`` changes the content)."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("digest", None)
        copy.__dict__.pop("grid_digest", None)
        return copy

    # --- size -----------------------------------------------------------------------------
    def axes(self) -> dict[str, list[float]]:
        """The grid axes actually spanned (disabled modules and unused SFH parameters drop out),
        in the order the Cartesian product is taken (first axis varies slowest)."""
        axes: dict[str, list[float]] = {"metallicity": list(self.stellar.metallicity)}
        fam = self.sfh.family
        if fam in ("delayed", "exponential", "delayed_burst"):
            axes["tau"] = list(self.sfh.tau)
        axes["age"] = list(self.sfh.age)
        if fam == "delayed_burst":
            axes["burst_age"] = list(self.sfh.burst_age)
            axes["burst_fraction"] = list(self.sfh.burst_fraction)
        if self.nebular.enabled:
            axes["logu"] = list(self.nebular.logu)
        if self.dust_attenuation.enabled:
            axes["av"] = list(self.dust_attenuation.av)
            if self.dust_attenuation.law == "modified_starburst":
                axes["delta"] = list(self.dust_attenuation.delta)
                axes["bump"] = list(self.dust_attenuation.bump)
            axes["young_factor"] = list(self.dust_attenuation.young_factor)
        if self.dust_emission.enabled and self.dust_attenuation.enabled:
            axes["umin"] = list(self.dust_emission.umin)
            axes["qpah"] = list(self.dust_emission.qpah)
            axes["gamma"] = list(self.dust_emission.gamma)
        if self.agn.enabled:
            axes["frac_agn"] = list(self.agn.frac_agn)
            axes["av_agn"] = list(self.agn.av_agn)
        return axes

    @property
    def n_models(self) -> int:
        """Number of models per redshift node (product of the axis lengths)."""
        n = 1
        for values in self.axes().values():
            n *= len(values)
        return n

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def default(cls) -> FitConfig:
        """The triage configuration: delayed-τ, 3 metallicities, Calzetti, nebular and dust
        emission on, AGN off — 1,215 models per redshift."""
        return cls()

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "fit configuration") -> FitConfig:
        """Validate a mapping, turning pydantic's errors into one :class:`ConfigError` that names
        ``source`` and every offending key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_format_errors(exc)}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> FitConfig:
        """Read a YAML fit configuration (keys as in this class; omitted keys take defaults)."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read fit configuration ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a fit configuration must be a mapping of sections")
        return cls.from_dict(data, source=str(path))

    def to_yaml(self) -> str:
        """The config as YAML (every key explicit), round-trippable through :meth:`from_yaml`."""
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc!r}"
        elif loc and not msg.startswith(loc.split(".")[0]):
            msg = f"{loc}: {msg}"
        parts.append(msg)
    return "; ".join(parts)
