"""``sedscale sites`` (list the shipped site configs) and ``sedscale sites show NAME`` (the resolved
engine configuration and the batch script a block would submit — nothing is submitted)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _site_names() -> list[tuple[str, Path]]:
    from sedscale.resources import site_configs_dir

    return [(p.stem, p) for p in sorted(Path(site_configs_dir()).glob("*.yaml"))]


def describe_site(name_or_path: str, engine: Optional[str] = None) -> str:
    """Human-readable resolved configuration + the batch script (HPC sites)."""
    import yaml

    from sedscale.engines.site import load_site

    site = load_site(name_or_path)
    if engine:
        site = site.model_copy(update={"engine": engine})
    lines = [f"# site {site.name}: {site.description}",
             f"# engine {site.engine}, scheduler {site.scheduler}, {site.cores_per_node} cores / "
             f"{site.gpus_per_node} GPUs ({site.gpu_kind}) per node, {site.workers_per_node} workers per node"]
    data = site.model_dump(mode="json", exclude={"llm"})
    if site.scheduler == "local":
        data.pop("scheduler_options", None)
    lines.append(yaml.safe_dump(data, sort_keys=False).rstrip())
    if site.llm is not None:
        lines.append(f"# llm: {site.llm.instances_per_node} vLLM instance(s) per node, "
                     f"tensor-parallel {site.llm.tensor_parallel_size}, model {site.llm.model_path}")
    if site.scheduler == "local":
        lines.append("# local site: no batch script (workers run on this machine)")
        return "\n".join(lines) + "\n"
    o = site.batch_options
    if site.engine == "parsl":
        lines.append(f"# Parsl HighThroughputExecutor + {'SlurmProvider' if site.scheduler == 'slurm' else 'PBSProProvider'}"
                     f" ({o.launcher} launcher), blocks {o.min_blocks}..{o.max_blocks} x {o.nodes_per_block} node(s), "
                     f"strategy htex_auto_scale every {o.strategy_period_s:g} s, heartbeat {o.heartbeat_period_s}/"
                     f"{o.heartbeat_threshold_s} s, scheduler poll {o.status_poll_s} s")
    else:
        lines.append(f"# dask-jobqueue {'SLURMCluster' if site.scheduler == 'slurm' else 'PBSCluster'}, adapt "
                     f"{max(o.min_blocks, 1) * o.nodes_per_block}..{o.max_blocks * o.nodes_per_block} single-node jobs, "
                     f"worker --lifetime {o.worker_lifetime} --lifetime-stagger {o.worker_lifetime_stagger}")
    from sedscale.engines.batch_script import render_batch_script

    lines.append("# ---- batch script of one block (not submitted) ----")
    lines.append(render_batch_script(site).rstrip())
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    sites_app = typer.Typer(help="Site configs: where campaigns run.", invoke_without_command=True,
                            no_args_is_help=False)

    @sites_app.callback()
    def sites_list(ctx: typer.Context) -> None:
        """List the shipped site configs."""
        if ctx.invoked_subcommand is not None:
            return
        from sedscale.engines.site import load_site
        from sedscale.errors import ConfigError

        for name, path in _site_names():
            try:
                site = load_site(str(path))
                typer.echo(f"{name:<12} {site.engine:<6} {site.scheduler:<6} {site.description}")
            except ConfigError as exc:
                typer.echo(f"{name:<12} INVALID  {exc}")

    @sites_app.command("show")
    def sites_show(
        name: str = typer.Argument(..., help="Site name (frontier) or a YAML file."),
        engine: Optional[str] = typer.Option(None, "--engine", help="Override the engine: parsl | dask."),
    ) -> None:
        """Print the resolved engine configuration and the batch script it would submit (no submission)."""
        if engine not in (None, "parsl", "dask"):
            raise typer.BadParameter("--engine must be parsl or dask")
        typer.echo(describe_site(name, engine), nl=False)

    app.add_typer(sites_app, name="sites")
