"""The LLM policy: an OpenAI-compatible chat model (vLLM in production) proposes the action.

Per source and step: one chat request — the fixed prefix (system) + the source's compact state
(user) — with structured output (``response_format`` = the bounded JSON schema of
:func:`~sedscale.agent.actions.action_json_schema`, ``strict``). The reply is validated again
(``jsonschema`` + pydantic), applied to the configuration (:mod:`sedscale.agent.apply`) and
checked against the configurations already tried. Whatever goes wrong — server unreachable,
killed, slow, an HTTP error, a reply that is not JSON, violates the schema, is illegal, changes
nothing or repeats a tried configuration — the :class:`RulesPolicy` acts instead and the reason is
recorded in the decision (and so in the source's accounting). Nothing a reply says is executed:
it selects one of the validated edits or nothing.

Robustness: a per-request timeout (client side, with an asyncio guard on top); bounded retries
with jittered exponential backoff for transport failures only (a bad reply is not retried: at
temperature 0 it would come back the same); a circuit breaker that, after ``breaker_threshold``
consecutive transport failures, sends every request straight to the fallback for
``breaker_cooldown_s`` — so a dead server costs seconds, not timeouts × sources × steps.
Concurrency is bounded by a semaphore (hundreds in flight is fine for vLLM). Usage (prompt,
cached, completion tokens) is read from every reply, including the ones that are then rejected.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sedscale.agent.actions import TERMINAL_OPS, ActionError, action_json_schema, parse_action
from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.policy import Decision, DecisionRequest
from sedscale.agent.prompt import PromptBuilder
from sedscale.agent.rules import RulesPolicy
from sedscale.agent.apply import describe_config
from sedscale.sed.config import FitConfig
from sedscale.tokens import TokenCounts

SCHEMA_NAME = "sedscale_action"
SOURCE_HEADER = "X-Sedscale-Source"  # the serving layer's accountant attributes tokens by it


@dataclass(frozen=True)
class LLMOptions:
    """Sampling, limits and robustness knobs of the LLM policy.

    Sampling defaults (also in docs/SERVING.md, "What the LLM policy sends"), chosen so that a
    source's replies are a function of its prompt and the campaign seed:

    * ``temperature`` 0 — greedy decoding: the most likely action, the same one on a rerun of the
      same prompt on the same server (``top_p`` 1 leaves the distribution untouched; batched GPU
      kernels may still change a near-tie, so LLM results are recorded, not reproduced);
    * ``max_tokens`` 96 — a valid action is ~15-60 tokens; a reply cut off here is recorded as
      ``truncated`` and the rules act instead;
    * a per-request ``seed`` — the source's step seed (a function of campaign seed, source id and
      step only, :func:`sedscale.agent.seeds.source_seed`), so with ``temperature`` > 0 a source
      draws the same random numbers whatever the order its requests are sent in;
    * structured output — ``response_format`` is the bounded JSON schema of the action space
      (``strict``), so the server can only emit a well-formed action; the reply is still
      validated again here.

    The messages are chat messages (a system prefix and a user state), never raw text: the
    server renders them with the chat template of the served model's own tokenizer config
    (Llama 3.1's for AstroSage-8B and for the test model).
    """

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 96  # a valid action is ~15-60 tokens; a runaway reply ends here (and is rejected)
    timeout_s: float = 60.0
    max_retries: int = 2
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    concurrency: int = 256
    breaker_threshold: int = 8
    breaker_cooldown_s: float = 30.0
    warmup: bool = True  # one request before the first fan-out: fills the prefix cache, compiles the grammar


class _Breaker:
    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self.threshold, self.cooldown_s = threshold, cooldown_s
        self.failures = 0
        self.open_until = 0.0
        self.trips = 0

    def allow(self) -> bool:
        return time.monotonic() >= self.open_until

    def success(self) -> None:
        self.failures = 0

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold and self.allow():
            self.open_until = time.monotonic() + self.cooldown_s
            self.trips += 1


class _Transport(Exception):
    def __init__(self, code: str, retry: bool) -> None:
        super().__init__(code)
        self.code, self.retry = code, retry


def _classify(exc: BaseException) -> _Transport:
    import openai

    if isinstance(exc, (asyncio.TimeoutError, openai.APITimeoutError)):
        return _Transport("timeout", True)
    if isinstance(exc, openai.APIConnectionError):
        return _Transport("connection_error", True)
    if isinstance(exc, openai.APIStatusError):
        code = int(getattr(exc, "status_code", 0) or 0)
        return _Transport(f"http_{code}", code == 429 or code >= 500)
    return _Transport(f"client_error: {type(exc).__name__}", False)


class LLMPolicy:
    """Chat-model policy with validation, fallback to rules, and usage accounting.

    Give ``client`` (an ``openai.AsyncOpenAI``, e.g. the serving layer's
    ``Router.openai_client()``), ``client_factory`` (a callable returning one, called lazily inside
    the event loop that will use it — routers are bound to one loop) or ``base_url``
    (``http://host:port/v1``). ``model`` defaults to
    the first model the server lists. ``knowledge`` is the epoch snapshot whose digest goes into
    the prompt prefix and which ranks the fallback rules.
    """

    name = "llm"

    def __init__(
        self,
        *,
        client: Any | None = None,
        client_factory: Callable[[], Any] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        options: LLMOptions = LLMOptions(),
        knowledge: KnowledgeBase | None = None,
        fallback: RulesPolicy | None = None,
        photoz: bool = False,
        base_config: FitConfig | None = None,
    ) -> None:
        if client is None and base_url is None and client_factory is None:
            raise ValueError("LLMPolicy needs a client, a client_factory or a base_url")
        self._client = client
        self._client_factory = client_factory
        self._own_client = client is None
        self.base_url = base_url
        self.api_key = api_key
        self.model = model
        self.options = options
        self.knowledge = knowledge.copy() if knowledge is not None else KnowledgeBase()  # frozen: the epoch's
        self.fallback = fallback or RulesPolicy(self.knowledge)
        self.photoz = photoz
        self.prompt = PromptBuilder(self.knowledge.digest())
        if base_config is not None:
            self.set_base_config(base_config)
        self.schema = action_json_schema(photoz)
        self.breaker = _Breaker(options.breaker_threshold, options.breaker_cooldown_s)
        self.overhead = TokenCounts()  # warm-up and model listing: not attributed to sources
        self.warmup_seconds = 0.0
        self._model_error: str | None = None
        self._ready = False
        self._sem: asyncio.Semaphore | None = None
        self._lock: asyncio.Lock | None = None
        # set to a deque to record (sent, answered) perf_counter times of every source request at
        # the server (not the warm-up, not the time queued behind ``concurrency``): what the
        # server was asked to carry at once — benchmarks only, off in campaigns
        self.request_times: collections.deque[tuple[float, float]] | None = None
        self.replies: list[str] = []  # raw replies (first 2,000), for debugging and tests
        self.sent: list[str] = []  # per-source prompt suffixes (first 2,000), idem

    # -- set-up -----------------------------------------------------------------------------------

    def set_base_config(self, config: FitConfig) -> None:
        """Name the triage configuration in the prompt prefix (the loop calls this; keep it the
        same for a whole campaign so the prefix, and the server's prefix cache, stay valid)."""
        brief = describe_config(config)
        if brief != self.prompt.base_config:
            self.prompt = PromptBuilder(self.prompt.digest, brief)
            self._ready = False  # warm the new prefix

    @property
    def client(self) -> Any:
        if self._client is None and self._client_factory is not None:
            self._client = self._client_factory()
        elif self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "EMPTY",
                                              max_retries=0, timeout=self.options.timeout_s)
        return self._client

    async def _prepare(self) -> None:
        assert self._lock is not None
        async with self._lock:
            if self._ready:
                return
            if self.model is None:
                try:
                    models = await asyncio.wait_for(self.client.models.list(), self.options.timeout_s)
                    self.model = models.data[0].id
                except Exception as exc:  # noqa: BLE001 — any failure: the rules act this step
                    self._model_error = _classify(exc).code
                    self.breaker.failure()
                    return  # try again next step
            self._model_error = None
            if self.options.warmup:
                t0 = time.perf_counter()
                try:
                    # structured, so the server also compiles (and caches) the action grammar now
                    resp = await asyncio.wait_for(self._create(self.prompt.warmup_messages(), max_tokens=1, seed=0,
                                                               source="warmup"),
                                                  self.options.timeout_s + 5.0)
                    self.overhead.add_usage(resp)
                except Exception:  # noqa: BLE001 — warm-up is an optimisation only
                    pass
                self.warmup_seconds += time.perf_counter() - t0
            self._ready = True

    async def aclose(self) -> None:
        """Close the client this policy created and forget loop-bound state (so the policy can be
        used again from another event loop, e.g. by the next :func:`run_agent` call)."""
        if self._own_client and self._client is not None:
            await self._client.close()
            self._client = None
        self._lock = self._sem = None
        self._ready = False

    # -- deciding ---------------------------------------------------------------------------------

    async def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        if not requests:
            return []
        if self._lock is None:  # loop-bound objects, created in the loop that uses them
            self._lock = asyncio.Lock()
            self._sem = asyncio.Semaphore(self.options.concurrency)
        if not self._ready and self.breaker.allow():
            await self._prepare()
        return list(await asyncio.gather(*(self._decide_one(r) for r in requests)))

    async def _create(self, messages: list[dict[str, str]], *, max_tokens: int, seed: int, source: str,
                      structured: bool = True) -> Any:
        kwargs: dict[str, Any] = dict(
            model=self.model, messages=messages, temperature=self.options.temperature,
            top_p=self.options.top_p, max_tokens=max_tokens, seed=seed, timeout=self.options.timeout_s,
            extra_headers={SOURCE_HEADER: source},
        )
        if structured:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": SCHEMA_NAME, "schema": self.schema, "strict": True}}
        return await self.client.chat.completions.create(**kwargs)

    def _fall(self, req: DecisionRequest, reason: str, usage: TokenCounts, t0: float, notes: list[str]) -> Decision:
        """The rules' decision for ``req``, recording why the LLM's was not used and what it cost."""
        d = self.fallback.decide_one(req)
        d.fallback = reason
        d.tokens = usage
        d.seconds = time.perf_counter() - t0
        d.notes = notes
        return d

    async def _decide_one(self, req: DecisionRequest) -> Decision:
        t0 = time.perf_counter()
        usage = TokenCounts()
        if self._model_error is not None:
            return self._fall(req, f"{self._model_error}: no model list", usage, t0, [])
        if self.model is None:  # never listed: the breaker was open before the first request
            return self._fall(req, "circuit_open: no model list", usage, t0, [])
        assert self._sem is not None
        messages = self.prompt.messages(req.state)
        if len(self.sent) < 2000:
            self.sent.append(messages[-1]["content"])
        jitter = random.Random(req.seed)
        resp = None
        reason = ""
        for attempt in range(self.options.max_retries + 1):
            if not self.breaker.allow():
                reason = "circuit_open" + (f" after {reason}" if reason else "")
                break
            try:
                async with self._sem:
                    sent = time.perf_counter()
                    try:
                        resp = await asyncio.wait_for(
                            self._create(messages, max_tokens=self.options.max_tokens, seed=req.seed % 2**31,
                                         source=str(req.state.source_id)),
                            self.options.timeout_s * 1.5 + 1.0)
                    finally:
                        if self.request_times is not None:
                            self.request_times.append((sent, time.perf_counter()))
                self.breaker.success()
                break
            except Exception as exc:  # noqa: BLE001 — classified below; never raised per source
                t = _classify(exc)
                reason = t.code
                if t.code in ("timeout", "connection_error") or t.retry:
                    self.breaker.failure()
                if not t.retry or attempt == self.options.max_retries:
                    break
                delay = min(self.options.backoff_s * 2**attempt, self.options.backoff_max_s)
                await asyncio.sleep(delay * (0.5 + 0.5 * jitter.random()))
        if resp is None:
            return self._fall(req, reason or "no_reply", usage, t0, [])
        usage.add_usage(resp)
        try:
            choice = resp.choices[0]
            text = choice.message.content
        except (AttributeError, IndexError, TypeError):
            return self._fall(req, "empty_reply", usage, t0, [])
        if len(self.replies) < 2000:
            self.replies.append(str(text)[:300])
        notes = [str(text)[:200]]
        try:
            action = parse_action(text, photoz=self.photoz)
        except ActionError as err:
            if getattr(choice, "finish_reason", None) == "length" and err.code == "invalid_json":
                return self._fall(req, f"truncated: max_tokens={self.options.max_tokens}", usage, t0, notes)
            return self._fall(req, f"{err.code}: {err.detail}", usage, t0, notes)
        config = None
        if action.op not in TERMINAL_OPS:
            try:
                config = req.try_apply(action)
            except ActionError as err:
                return self._fall(req, f"rejected_{err.code}: {err.detail}", usage, t0, notes)
            if config.hash() in req.tried:
                return self._fall(req, f"repeat: {action.brief()}", usage, t0, notes)
        return Decision(action=action, config=config, policy=self.name, rule=f"llm->{action.key()}",
                        tokens=usage, seconds=time.perf_counter() - t0, notes=notes)
