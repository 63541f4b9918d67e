"""The batch script a site's block would submit, rendered without submitting anything
(``sedscale sites show``)."""

from __future__ import annotations

from sedscale.engines.site import SiteConfig


def render_batch_script(site: SiteConfig) -> str:
    """The script of one block of the site's engine (Parsl) or one job (Dask)."""
    if site.engine == "parsl":
        from sedscale.engines.parsl_config import render_parsl_script

        return render_parsl_script(site)
    from sedscale.engines.dask_config import render_dask_script

    return render_dask_script(site)
