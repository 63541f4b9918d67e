"""Is an instance answering? Probes of vLLM's unauthenticated ``/health`` and a port check.

``/health`` answers 200 only once the engine is loaded and 5xx when the engine core has died, so
it is both the start-up signal and the liveness check. It needs no API key (vLLM guards only
``/v1``), so the supervisor never handles the key.
"""

from __future__ import annotations

import errno
import socket

import httpx


def probe_host(bind_host: str) -> str:
    """Where to reach a server bound to ``bind_host`` from this node (wildcards → loopback)."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "", "::") else bind_host


def is_healthy(base_url: str, timeout_s: float = 2.0) -> bool:
    """True when ``GET {base_url}/health`` answers 200 within ``timeout_s``."""
    try:
        return httpx.get(f"{base_url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


async def is_healthy_async(client: httpx.AsyncClient, base_url: str, timeout_s: float = 2.0) -> bool:
    """The async twin of :func:`is_healthy`, for the router's probes."""
    try:
        response = await client.get(f"{base_url}/health", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (so our server could not bind).

    Binds with ``SO_REUSEADDR`` like uvicorn does, so a port in TIME_WAIT after a restart does not
    count as taken while a live listener does.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False
