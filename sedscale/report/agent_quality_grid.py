"""The agent-quality benchmark's model counting and its exhaustive grid (``sedscale bench agent-quality``).

**Counting.** ``models_per_source`` counts (model, redshift node) χ² evaluations. A known-redshift
fit (:func:`sedscale.sed.api.fit_photometry`) evaluates a source against every model that is
valid (younger than the Universe) at *both* lattice nodes bracketing its redshift, each χ² on
the model's fluxes at those two nodes mixed by the source's interpolation weight; so one fit
costs the source ``2 × (models valid at both nodes)`` (model, node) evaluations. A model's
validity depends only on its SFH age, and every age value appears equally often in a grid
(the axes are a Cartesian product), hence the count below needs no grid build. A source
without a usable redshift or any observed band is not fitted: 0.

**The exhaustive grid.** One large grid search over what the agent's action space reaches:
the union of the configuration families :func:`sedscale.agent.apply.action_space_configs`
enumerates (every SFH family incl. the burst, every attenuation law with its slopes, the AGN off
/ in its IR mode / in its wavelength mode, A_V up to 8 mag, nebular log U −3 … −1, each family at
the widest value lists that stay within the agent's ``ApplyLimits``): 29 families, 646,380 models
per node at the defaults. ``max_changes`` bounds it to the families at most that many discrete
choices (SFH family, attenuation law, AGN mode) away from the workflow's triage configuration
(1: 8 families, 153,900 models per node — what earlier runs used, ~4× cheaper). The benchmark
takes, per source, the estimates of the member with the lowest best χ² (ties: the earlier member).
"""

from __future__ import annotations


import numpy as np

from sedscale.agent.apply import action_space_configs
from sedscale.sed import cosmology
from sedscale.sed.config import FitConfig
from sedscale.sed.grid import lattice_coordinates, lattice_nodes

def discrete_changes(base: FitConfig, config: FitConfig) -> int:
    """How many discrete choices (SFH family, attenuation law, AGN on / its mode) differ from ``base``."""
    base_agn = (base.agn.enabled, base.agn.fraction_at if base.agn.enabled else None)
    agn = (config.agn.enabled, config.agn.fraction_at if config.agn.enabled else None)
    return (int(config.sfh.family != base.sfh.family) + int(config.dust_attenuation.law != base.dust_attenuation.law)
            + int(agn != base_agn))


def exhaustive_configs(base: FitConfig, max_changes: int | None = None) -> list[FitConfig]:
    """The members of the exhaustive grid (module docstring), in the action space's order: every
    family, or (``max_changes``) those at most that many discrete choices from ``base``."""
    members = action_space_configs(base)
    return members if max_changes is None else [c for c in members if discrete_changes(base, c) <= max_changes]


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
