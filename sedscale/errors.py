"""Exceptions users see, each mapped to one documented exit code by the CLI.

Raise these at boundaries (files, configs, command-line input) with a message that names the
file, key, column or row at fault; the CLI prints the message and exits with ``exit_code``.
"""

from __future__ import annotations


class SedscaleError(Exception):
    """Base of every error sedscale reports to a user rather than as a traceback."""

    exit_code = 1


class InputError(SedscaleError):
    """A catalog, profile, filter file or other input is unusable (exit code 3)."""

    exit_code = 3


class CatalogError(InputError):
    """A file-level fault in a catalog: unreadable, empty, missing or mistyped columns."""


class ConfigError(InputError):
    """A site config, workflow, fit configuration or profile fails validation."""


class CampaignError(SedscaleError):
    """A campaign directory is in a state that forbids the command (exit code 4)."""

    exit_code = 4


EXIT_CODES_HELP = (
    "Exit codes: 0 success (every row fitted, quarantined or failed with a reason); "
    "1 unexpected error; 2 bad command-line usage; 3 unusable input (catalog, profile, config or "
    "filter file; the message names the file and column); 4 the campaign's state forbids the "
    "command (e.g. submit into an existing campaign, resume after the catalog changed)."
)
