"""Where the shipped site configs and workflows live, in a checkout and after ``pip install``.

A wheel carries ``site_configs/`` and ``workflows/`` as ``sedscale/_data/...`` (see
pyproject.toml); an editable install or a checkout finds them beside the package. Both paths are
tried so ``--site frontier`` works from any directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(kind: str) -> Path:
    for candidate in (_PACKAGE_DIR / "_data" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"sedscale's shipped {kind}/ folder is missing from the installation")


def site_configs_dir() -> Path:
    """The folder of shipped site configs (one YAML per machine)."""
    return _data_dir("site_configs")


def workflows_dir() -> Path:
    """The folder of shipped workflows (campaign recipes)."""
    return _data_dir("workflows")


def resolve_named_yaml(name_or_path: str, kind: str) -> Path:
    """A YAML path from a shipped name (``frontier``) or a path to a user's own file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    folder = site_configs_dir() if kind == "site" else workflows_dir()
    candidate = folder / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in folder.glob("*.yaml"))
    from sedscale.errors import ConfigError

    raise ConfigError(f"unknown {kind} {name_or_path!r}: shipped {kind}s are {', '.join(known)}")
