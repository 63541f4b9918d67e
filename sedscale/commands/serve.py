"""``sedscale serve --site NAME``: run a node's LLM service in the foreground.

For debugging a site's ``llm:`` section on a compute node (``srun -N1 sedscale serve --site
frontier``) and for laptops. ``--dry-run`` prints each instance's launch line without starting
anything, so a GPU site's configuration can be reviewed anywhere. Ctrl-C or SIGTERM stops every
instance (by process group) before exiting.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from sedscale.serve.settings import LLMSettings


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the root app."""
    app.command("serve")(serve)


def serve(
    site: str = typer.Option("local", "--site", help="Site name (site_configs/NAME.yaml) or a YAML path."),
    model_path: Optional[str] = typer.Option(None, "--model-path", help="Override llm.model_path."),
    instances: Optional[int] = typer.Option(None, "--instances", help="Override llm.instances_per_node."),
    base_port: Optional[int] = typer.Option(None, "--base-port", help="Override llm.base_port."),
    run_dir: Optional[Path] = typer.Option(
        None, "--run-dir", help="Logs, service.json and api_key go here (default ./llm-serve/HOST)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the launch lines; start nothing."),
    status_every: float = typer.Option(30.0, "--status-every", help="Seconds between status lines."),
) -> None:
    """Start the site's vLLM instances on this node and keep them up until interrupted."""
    from sedscale.serve.command import describe

    settings = _load_llm_settings(site, model_path=model_path, instances=instances, base_port=base_port)
    if dry_run:
        for index in range(settings.instances_per_node):
            typer.echo(f"[instance {index}] {describe(settings, index)}")
        return
    _run_foreground(settings, run_dir or Path.cwd() / "llm-serve" / socket.gethostname(), status_every)


def _load_llm_settings(
    site: str, *, model_path: str | None, instances: int | None, base_port: int | None
) -> LLMSettings:
    """The site's validated ``llm:`` section with the command-line overrides applied."""
    from pydantic import ValidationError

    from sedscale.engines.site import load_site
    from sedscale.errors import ConfigError
    from sedscale.serve.settings import LLMSettings

    config = load_site(site)
    if config.llm is None:
        raise ConfigError(f"site {config.name!r} has no llm: section (llm: null): it serves no LLM")
    overrides = {"model_path": model_path, "instances_per_node": instances, "base_port": base_port}
    values = {**config.llm.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return LLMSettings(**values)
    except ValidationError as exc:
        raise ConfigError(f"site {config.name!r}, llm section after overrides: {exc}") from None


def _run_foreground(settings: LLMSettings, run_dir: Path, status_every: float) -> None:
    import signal
    import threading

    from rich.table import Table

    from sedscale.commands._common import err_console as console
    from sedscale.serve.service import LLMService

    service = LLMService(settings, run_dir=run_dir)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    console.print(f"starting {settings.instances_per_node} instance(s) of {settings.served_model_name} "
                  f"(logs in {run_dir}) ...", markup=False)  # fmt: skip
    try:
        service.start()
        table = Table(title=f"LLM service on {socket.gethostname()} (started in {service.startup_s:.1f} s)")
        for column in ("instance", "base URL", "pid", "log"):
            table.add_column(column, overflow="fold")
        for inst, url in zip(service.instances, service.base_urls):
            table.add_row(str(inst.index), url, str(inst.pid), str(inst.log_file))
        console.print(table)
        key_note = f"API key in {run_dir / 'api_key'}" if service.api_key else "no API key"
        console.print(f"model {service.model!r}; {key_note}; Ctrl-C to stop.", markup=False)
        while not stop.wait(status_every):
            snap = service.accounting()
            states = ", ".join(s.value for s in service.states())
            m = service.metrics()
            console.print(
                f"states [{states}] restarts {service.restarts} | running {m.requests_running:.0f} "
                f"waiting {m.requests_waiting:.0f} | prompt {m.prompt_tokens:.0f} gen "
                f"{m.generation_tokens:.0f} cached {m.prompt_tokens_cached:.0f} tokens | "
                f"allocated {snap.allocated_gpu_s:.0f} GPU-s",
                markup=False,
            )
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping instances ...")
        service.stop()
        signal.signal(signal.SIGTERM, previous)
