"""Which sources enter the agent loop: the triage verdict, then admission — per source.

A source enters when its triage fit fails the acceptance test, a configuration change could help
(a fit exists, enough degrees of freedom) and it is admitted under ``max_agent_fraction``
(:func:`sedscale.agent.seeds.admitted`: a hash of (campaign seed, source id)). Every step looks at
the source's own row only, so whether a source enters never depends on its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sedscale.agent.acceptance import AcceptanceTest, FitRows, SourceFit, source_fits
from sedscale.agent.seeds import admitted


@dataclass
class Selection:
    """The triage verdict of N sources and the ones the loop takes."""

    triage_ok: np.ndarray  # (N,) bool: the triage fit passes
    entered: np.ndarray  # (N,) bool: enters the loop
    stop: list[str]  # (N,) stop reason so far ("" for the sources that enter)
    fits: dict[int, SourceFit]  # row index → triage fit, for the sources that enter


def select_sources(triage: FitRows, source_id: np.ndarray, acceptance: AcceptanceTest, *,
                   seed: int, max_agent_fraction: float) -> Selection:
    """The triage verdict (vectorised: per-source objects only for the few sources the loop takes)."""
    triage_ok, helpable = acceptance.triage_arrays(triage)
    stop = ["triage_accepted" if ok else "" for ok in triage_ok.tolist()]
    not_eligible = np.flatnonzero(~triage_ok & ~helpable)
    for i, f in zip(not_eligible.tolist(), source_fits(triage, not_eligible)):
        stop[i] = "not_eligible:" + ",".join(acceptance.failures(f))
    candidates = np.flatnonzero(~triage_ok & helpable)
    let_in = admitted(seed, np.asarray(source_id)[candidates], max_agent_fraction)
    for i in candidates[~let_in].tolist():
        stop[i] = "agent_quota"
    chosen = candidates[let_in]
    entered = np.zeros(triage_ok.shape[0], dtype=bool)
    entered[chosen] = True
    return Selection(triage_ok, entered, stop, dict(zip(chosen.tolist(), source_fits(triage, chosen))))
