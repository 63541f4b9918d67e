"""The agent-quality benchmark's model counting and its exhaustive grid (``sedscale bench agent-quality``).

**Counting.** ``models_per_source`` counts (model, redshift node) χ² evaluations. A known-redshift
fit (:func:`sedscale.sed.api.fit_photometry`) evaluates a source against every model that is
valid (younger than the Universe) at *both* lattice nodes bracketing its redshift, each χ² on
the model's fluxes at those two nodes mixed by the source's interpolation weight; so one fit
costs the source ``2 × (models valid at both nodes)`` (model, node) evaluations. A model's
validity depends only on its SFH age, and every age value appears equally often in a grid
(the axes are a Cartesian product), hence the count below needs no grid build. A source
without a usable redshift or any observed band is not fitted: 0.

**The exhaustive grid.** One large grid search over what the agent's action space reaches,
bounded so that it stays feasible on 2 cores (the full Cartesian product of every reachable
value list is ~10^7 models per node). It is a union of :class:`FitConfig` members, each the
workflow's triage configuration with the *widened* ranges (A_V up to 6 mag: three ``widen``
steps; log U over the Cloudy range at 1 dex) and ONE discrete choice changed: each SFH family
(delayed, exponential, constant, delayed + burst), each attenuation law (Calzetti, SMC,
modified starburst with its δ values), the AGN on (the rules' fractions, coarse obscuration)
and the rules' low-metallicity set. Combinations of two discrete changes (e.g. burst + AGN) are
not in it. The benchmark takes, per source, the estimates of the member with the lowest best χ².
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sedscale.sed import cosmology
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import lattice_coordinates, lattice_nodes

#: A_V values added above the triage list (three ``widen`` up steps of 1 mag from 3).
WIDE_AV_EXTRA = (4.0, 5.0, 6.0)
#: log U over the Cloudy grid's range (−4 … −1) at 1 dex.
WIDE_LOGU = [-4.0, -3.0, -2.0, -1.0]
#: What ``enable burst`` brings (sedscale.agent.apply.BURST_FRACTIONS / BURST_AGES).
BURST_FRACTIONS = [0.0, 0.03, 0.1, 0.3]
BURST_AGES = [3.0, 10.0, 30.0]
#: The rules' AGN lists (sedscale.agent.rules.AGN_FRACTIONS / AGN_AV_COARSE).
AGN_FRACTIONS = [0.0, 0.2, 0.4, 0.6, 0.8, 0.95]
AGN_AV = [0.0, 2.0, 4.0]
#: The rules' low-metallicity set (line_excess) and modified-starburst slopes.
LOW_METALLICITY = [0.05, 0.2, 0.4, 1.0]
MODIFIED_STARBURST_DELTA = [-0.5, -0.25, 0.0]


def evaluations_per_source(config: FitConfig, redshift: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(N,) (model, redshift node) χ² evaluations one known-z fit of ``config`` spends per source.

    ``observed`` (N,) says whether a source has at least one observed band (else not fitted)."""
    cell, _ = lattice_coordinates(config, redshift)
    fitted = (cell >= 0) & np.asarray(observed, bool)
    out = np.zeros(cell.shape[0], np.int64)
    if not fitted.any():
        return out
    upper = lattice_nodes(config, cell[fitted] + 1)  # the younger Universe of the two nodes
    age_universe = cosmology.age_gyr(upper, config.cosmology)
    ages = np.asarray(config.sfh.age, np.float64)
    valid_ages = np.sum(ages[None, :] <= age_universe[:, None] + 1e-9, axis=1)
    out[fitted] = 2 * (config.n_models // ages.size) * valid_ages
    return out


def _widened(base: FitConfig) -> dict[str, Any]:
    """The triage configuration with the widened A_V and log U ranges, as a dict to edit."""
    data = base.model_dump(mode="python")
    av = sorted(set(data["dust_attenuation"]["av"]) | set(WIDE_AV_EXTRA))
    data["dust_attenuation"]["av"] = av
    data["dust_attenuation"]["enabled"] = True
    data["nebular"]["enabled"] = True
    data["nebular"]["logu"] = list(WIDE_LOGU)
    data["agn"]["enabled"] = False
    return data


def exhaustive_configs(base: FitConfig) -> list[FitConfig]:
    """The members of the exhaustive grid (module docstring), in a fixed order (ties in χ² go
    to the earlier member)."""
    edits: list[dict[str, dict[str, Any]]] = [
        {},
        {"sfh": {"family": "exponential"}},
        {"sfh": {"family": "constant"}},
        {"sfh": {"family": "delayed_burst", "burst_fraction": BURST_FRACTIONS, "burst_age": BURST_AGES},
         "nebular": {"logu": [base.nebular.logu[0]]}},
        {"dust_attenuation": {"law": "smc"}},
        {"dust_attenuation": {"law": "modified_starburst", "delta": MODIFIED_STARBURST_DELTA}},
        {"agn": {"enabled": True, "frac_agn": AGN_FRACTIONS, "av_agn": AGN_AV},
         "nebular": {"logu": [base.nebular.logu[0]]}},
        {"stellar": {"metallicity": LOW_METALLICITY}},
    ]
    members: list[FitConfig] = []
    for edit in edits:
        data = _widened(base)
        if base.sfh.family != "delayed" and "sfh" not in edit:
            data["sfh"]["family"] = base.sfh.family
        for section, fields in edit.items():
            data[section].update(fields)
        if data["dust_attenuation"]["law"] != "modified_starburst":
            data["dust_attenuation"]["delta"], data["dust_attenuation"]["bump"] = [0.0], [0.0]
        config = FitConfig.model_validate(data)
        if all(config.hash() != m.hash() for m in members):
            members.append(config)
    return members
