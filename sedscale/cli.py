"""The ``sedscale`` command line: a root Typer app plus one module per noun.

Each module in :mod:`sedscale.commands` exposes ``register(app)``; they are discovered here so a
new command never edits this file. Heavy imports (numpy, pyarrow, parsl, ...) live inside the
command functions, so ``sedscale --help`` stays instant. Every :class:`SedscaleError` becomes a
one-line message and its documented exit code instead of a traceback; usage errors are shown by
typer (standalone mode) with exit code 2. Help screens use :mod:`sedscale.commands._help`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Optional

import typer

from sedscale import __version__
from sedscale.commands._help import SedscaleGroup, use_plain_help
from sedscale.errors import EXIT_CODES_HELP, SedscaleError

app = typer.Typer(
    name="sedscale",
    cls=SedscaleGroup,
    help="SED fitting of billion-row photometric catalogs on HPC machines, with LLM agents "
    "where a standard fit fails.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sedscale {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """sedscale: plan, fit, checkpoint and account SED-fitting campaigns."""


def _register_commands() -> None:
    import sedscale.commands as commands

    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sedscale.commands.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
    use_plain_help(app)


_register_commands()


def main() -> None:
    """Console-script entry point: run the app and map sedscale errors to exit codes.

    Typer runs in standalone mode: it shows usage errors (exit 2), exits with a ``typer.Exit``
    code and turns Ctrl-C into exit 130. Typer 0.29 raises its own copy of click's exceptions
    (``typer._click``), so catching ``click.exceptions`` here would miss every usage error.
    """
    try:
        app()
    except SedscaleError as exc:
        typer.echo(f"sedscale: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # outside a command (typer maps one inside a command to 130)
        typer.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
