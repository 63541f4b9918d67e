"""Help screens that read like a usage line: no value shown for flags, no braces around arguments.

Why: typer 0.29 (which carries its own copy of click as ``typer._click``) renders its rich help
panels with ``display_type_rich`` for every option, so a flag such as ``--help`` or ``--json``
appears as ``--help <bool>`` — as if it took a value — although typer's plain formatter skips the
type of a flag. Its usage line writes a required argument as ``{catalog}...``, which reads like a
template or a set of choices. Command docstrings keep their source line breaks in rich markup
mode, so a wrapped docstring breaks mid-sentence in ``--help``.

The classes here are typer's own extension point (``cls`` of a command or group): a flag gets an
empty metavar (typer shows the metavar instead of the type), the usage line uses click's
notation (``CATALOG...`` required, ``[NAME]`` optional) and single line breaks inside a help
paragraph are joined. :func:`use_plain_help` applies them to every command of an app, so a command
module needs no change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import DefaultPlaceholder

if TYPE_CHECKING:
    import typer
    # typer 0.29 types its command methods with its own copy of click (no public alias exists)
    from typer._click.core import Context as ClickContext
    from typer._click.core import Parameter


def unwrap_paragraphs(text: str | None) -> str | None:
    """Join the source line breaks inside each paragraph (a ``\\b`` paragraph keeps its lines).

    Paragraphs (blank-line separated) stay apart; the terminal, not the docstring, wraps lines.
    """
    if not text:
        return text
    lines = [line.strip() for line in text.strip().splitlines()]
    paragraphs = "\n".join(lines).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def argument_usage(argument: TyperArgument) -> str:
    """Click's usage notation: ``NAME`` when required, ``[NAME]`` when optional, ``...`` when many."""
    name = argument.metavar or (argument.name or "").upper()
    piece = name if argument.required else f"[{name}]"
    return f"{piece}..." if argument.nargs != 1 else piece


def without_flag_values(params: list[Parameter]) -> list[Parameter]:
    """Give each flag an empty metavar: typer's rich panel then shows no type (``<bool>``) for it."""
    for param in params:
        if isinstance(param, TyperOption) and (param.is_flag or param.count) and param.metavar is None:
            param.metavar = ""
    return params


def usage_pieces(options_metavar: str | None, params: list[Parameter]) -> list[str]:
    """``[OPTIONS]`` then each argument in click's notation (options are not listed one by one)."""
    pieces = [options_metavar] if options_metavar else []
    return pieces + [argument_usage(p) for p in params if isinstance(p, TyperArgument)]


class SedscaleCommand(TyperCommand):
    """A typer command whose help shows flags without values and arguments in click's notation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = unwrap_paragraphs(self.help)

    def get_params(self, ctx: ClickContext) -> list[Parameter]:
        return without_flag_values(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: ClickContext) -> list[str]:
        return usage_pieces(self.options_metavar, self.get_params(ctx))


class SedscaleGroup(TyperGroup):
    """A typer group (the root app, ``sedscale sites``) with the same help conventions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = unwrap_paragraphs(self.help)

    def get_params(self, ctx: ClickContext) -> list[Parameter]:
        return without_flag_values(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: ClickContext) -> list[str]:
        return [*usage_pieces(self.options_metavar, self.get_params(ctx)), self.subcommand_metavar]


def use_plain_help(app: typer.Typer) -> None:
    """Build every command and sub-group of ``app`` (recursively) with the classes above,
    unless the command module chose a class of its own."""
    for command in app.registered_commands:
        if command.cls is None or command.cls is TyperCommand:  # typer's default class
            command.cls = SedscaleCommand
    for group in app.registered_groups:
        if isinstance(group.cls, DefaultPlaceholder) or group.cls in (None, TyperGroup):
            group.cls = SedscaleGroup
        if group.typer_instance is not None:
            use_plain_help(group.typer_instance)

#: The catalog argument's help, shared by validate, plan, fit and submit (one wording of the forms).
CATALOG_HELP = ("Parquet file(s), a directory or a glob; a HATS catalog or collection root; FITS table(s). "
                "Local paths, s3:// (anonymous unless AWS credentials are set) or https://.")
