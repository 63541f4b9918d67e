"""Find the weights before anything starts, and optionally copy them to node-local storage.

Nothing downloads at run time (compute nodes usually have no internet, and an 8B model pulled by
hundreds of nodes at once is not a plan), so a missing weights directory must be the first,
clearest error — on the login node before submitting (:func:`check_model_path`) and again on the
node before any instance starts (:func:`prepare_model`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path

from sedscale.serve.errors import ModelPathError
from sedscale.serve.settings import LLMSettings, expand_path


def check_model_path(settings: LLMSettings) -> Path:
    """The resolved weights directory, or :class:`ModelPathError` naming the key and the node."""
    path = settings.resolved_model_path()
    if path.is_dir() and any(path.iterdir()):
        return path
    unset = "$" in str(path)
    hint = (
        "an environment variable in it is not set on this node"
        if unset
        else "stage the weights there first (nothing downloads at run time)"
    )
    what = "is an empty directory" if path.is_dir() else "does not exist"
    raise ModelPathError(
        f"llm.model_path {settings.model_path!r} (resolved: {path}) {what} on host "
        f"{socket.gethostname()}: {hint}"
    )


def prepare_model(settings: LLMSettings) -> Path:
    """The directory the instances load: the checked source, or its node-local copy.

    One copy per node even when several processes call this at once (a file lock beside the
    destination); a complete earlier copy (same relative paths and sizes) is reused.
    """
    source = check_model_path(settings)
    if settings.staging is None:
        return source
    dest_root = expand_path(settings.staging.dest)
    dest = dest_root / source.name
    dest_root.mkdir(parents=True, exist_ok=True)
    with open(dest_root / f".{source.name}.stage.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if settings.staging.skip_if_present and _same_tree(source, dest):
            return dest
        partial = dest_root / f".{source.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, symlinks=False)
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(partial, dest)
    return dest


def _same_tree(source: Path, dest: Path) -> bool:
    if not dest.is_dir():
        return False

    def listing(root: Path) -> dict[str, int]:
        return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}

    return listing(source) == listing(dest)
