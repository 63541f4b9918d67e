"""Execution back ends (Parsl, Dask) behind one small interface, site loading, and the batch
schedulers they run on (:mod:`sedscale.engines.schedulers`).

:func:`make_engine` picks the back end named by a site config; the core never branches on a
machine's name. Implementations are imported lazily so ``import sedscale.engines`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from sedscale.campaign.paths import CampaignPaths
    from sedscale.engines.base import Engine
    from sedscale.engines.site import SiteConfig


def make_engine(site: "SiteConfig", paths: "CampaignPaths", workers: Optional[int] = None) -> "Engine":
    """The engine a site asks for, with its working folders inside the campaign directory; it
    records its batch jobs and local processes there so a later driver can stop them."""
    from sedscale.engines.base import RunFiles
    from sedscale.engines.compute_env import check_submittable

    check_submittable(site)  # before anything is submitted
    engine: "Engine"
    if site.engine == "parsl":
        from sedscale.engines.parsl_engine import ParslEngine

        engine = ParslEngine(site, paths.parsl_run_dir, workers)
    else:
        from sedscale.engines.dask_engine import DaskEngine

        engine = DaskEngine(site, paths.dask_dir, workers)
    engine.run_files = RunFiles(jobs=paths.hpc_jobs, processes=paths.processes)
    return engine
