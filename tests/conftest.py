"""Shared pytest configuration: a per-session cache directory for expensive artefacts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from sedscale.serve.service import LLMService
    from sedscale.serve.settings import LLMSettings

import pytest

#: The session's own sedscale cache (grids, derived arrays, the numba kernel), set as
#: ``$SEDSCALE_CACHE_DIR`` for this process and every command the tests start.
_SESSION_CACHE: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Give the session a private sedscale cache, seeded with the user's compiled kernel.

    Why: grids are cached per user and shared by every campaign and checkout, and some tests
    delete the cached grids on purpose (the crash test's "grid" rounds); a session must neither
    read grids another run is writing or deleting nor delete a developer's own cache. Copying
    the compiled kernel (a few MB; ``scripts/install.sh`` compiles it) keeps the session from
    compiling it again; compiled and loaded kernels give the same bits."""
    global _SESSION_CACHE
    import shutil
    import tempfile

    from sedscale.cache_dirs import cache_root

    user_kernel = cache_root() / "numba"
    _SESSION_CACHE = Path(tempfile.mkdtemp(prefix="sedscale-test-cache-"))
    if user_kernel.is_dir():
        shutil.copytree(user_kernel, _SESSION_CACHE / "numba")
    os.environ["SEDSCALE_CACHE_DIR"] = str(_SESSION_CACHE)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's private cache (gigabytes of grids after a full run)."""
    import shutil

    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def sedscale_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory shared by the whole test session (grids, tiny models)."""
    root = os.environ.get("SEDSCALE_TEST_CACHE")
    path = Path(root) if root else tmp_path_factory.mktemp("sedscale-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- one CPU vLLM service per test session (the tiny random-weight Llama) --------------------------
# A CPU vLLM start costs 35-90 s and ~3 GB on a 2-core machine, so every test that only needs "a
# server" shares :func:`llm_service`; it is stopped at the end of the session by its process group
# (the PID we started), never by name. Heavy imports stay inside the fixtures.


@pytest.fixture(scope="session")
def tiny_model(sedscale_cache_dir: Path) -> Path:
    """The tiny random-weight Llama (built once per cache directory)."""
    from sedscale.testing.tiny_llama import build_tiny_llama

    return build_tiny_llama(sedscale_cache_dir)


@pytest.fixture(scope="session")
def llm_settings(tiny_model: Path) -> "LLMSettings":
    """One CPU instance of the tiny model on a free loopback port, with an API key."""
    from sedscale.testing.llm import tiny_llm_settings

    return tiny_llm_settings(tiny_model, instances=1)


@pytest.fixture(scope="session")
def llm_service(llm_settings: "LLMSettings", tmp_path_factory: pytest.TempPathFactory) -> "Iterator[LLMService]":
    """The session's running service (one vLLM server), stopped by process group at the end."""
    from sedscale.serve.service import LLMService

    run_dir = tmp_path_factory.mktemp("llm-service")
    service = LLMService(llm_settings, run_dir=run_dir, api_key="test-key-not-secret", sample_interval_s=0.25)
    service.start()
    try:
        yield service
    finally:
        pids = [i.pid for i in service.instances]
        service.stop()
        for pid in pids:
            assert pid is not None and not _alive(pid), f"vLLM process {pid} survived stop()"


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False

