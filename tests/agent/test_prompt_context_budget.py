"""The worst-case LLM prompt stays well inside an 8,192-token context (AstroSage-8B's served length).

Built through the real path — :class:`LLMPolicy`'s own prompt builder, its knowledge digest and
start configuration, :func:`render_state` — from everything that can grow: a knowledge base whose
digest is at its cap (longest pattern and action names, billion-scale counts), the widest start
configuration (every module on, every axis listed), the largest band set a built-in profile can
have (all built-in bands, photo-z), every residual pattern, every estimate, a 60-character note,
and a ``tried:`` history longer than the loop's default max steps of ``set`` actions with the most
values and digits. Counted with the tiny test tokenizer through the Llama-3.1 chat template:
a byte-level BPE trained on ~1 kB of text, so ~1.5-2 characters per token — pessimistic against
Llama-3's 128k vocabulary (~3.5-4 characters per token on such text).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from sedscale.agent import DEFAULT_MAX_STEPS, KnowledgeBase, LLMOptions, LLMPolicy, RuleStats, SourceFit
from sedscale.agent.actions import EDITABLE_PARAMETERS, MAX_VALUES, SetValues, Shift, Widen
from sedscale.agent.state import EDGE_FIELDS, KEY_ESTIMATES, Attempt, SourceState
from sedscale.bands import BUILTIN_BANDS
from sedscale.sed.config import PARAMETER_BOUNDS, FitConfig
from sedscale.testing.tiny_llama import build_tiny_llama, chat_token_ids

CONTEXT = 8192
MARGIN = 0.5  # the worst case must use at most half the context: room for what the prompt gains later
PATTERNS = ("uv_over", "uv_under", "old_blue", "ir_under", "line_excess", "v_shape",
            *(f"{name}_edge" for name in EDGE_FIELDS), "generic")


def _awkward(param: str, count: int) -> list[float]:
    """``count`` in-bounds values that print with the most digits (``:g`` keeps 6)."""
    b = PARAMETER_BOUNDS[param]
    return [b.min + (b.max - b.min) * (2 * k + 1) / (2 * count + 1.3) for k in range(count)]


def _widest_config() -> FitConfig:
    """Every module on, a burst SFH, the law with most parameters, 3 long values on every axis."""
    data = FitConfig().model_dump(mode="python")
    data["sfh"]["family"] = "delayed_burst"
    data["dust_attenuation"]["law"] = "modified_starburst"
    for module in ("nebular", "agn", "dust_emission", "dust_attenuation"):
        data[module]["enabled"] = True
    for param in EDITABLE_PARAMETERS:
        section, field = param.split(".")
        data[section][field] = _awkward(param, 3)
    return FitConfig.model_validate(data)


def _full_knowledge() -> KnowledgeBase:
    """Every (pattern, longest action key) measured a billion times: the digest at its cap."""
    keys = [a.key() for p in EDITABLE_PARAMETERS for a in (Widen(op="widen", param=p, side="both"),
                                                           Shift(op="shift", param=p, direction="down"))]
    rules = {(p, k): RuleStats(n=1_234_567_891, improved=1_034_567_891, accepted=987_654_321, gain_milli=-10**12)
             for p, k in itertools.product(PATTERNS, keys)}
    return KnowledgeBase(rules, epoch=99)


def _worst_state() -> SourceState:
    filters = tuple(BUILTIN_BANDS)
    n = len(filters)
    residual = np.array([(-1) ** k * (123.4 + k) for k in range(n)])
    estimates = {name: (-0.000123456, 1.0) for name, _ in KEY_ESTIMATES}
    fit = SourceFit(chi2_red=12345.678, chi2_best=1e7, dof=n - 1, n_good=n, residual=residual,
                    best_flux=np.ones(n), estimates=estimates)
    longest = max(EDITABLE_PARAMETERS, key=lambda p: len(p.split(".")[-1]))
    history = [Attempt(SetValues(op="set", param=longest, values=_awkward(longest, MAX_VALUES)).brief(),
                       12345.678, True, True) for _ in range(max(DEFAULT_MAX_STEPS, 12))]
    state = SourceState(source_id=-9_223_372_036_854_775_807, redshift=12.345, filters=filters,
                        flux=np.full(n, 1e-3), error=np.full(n, 1e-4), fit=fit, config_brief="",
                        history=history, note="Q9z,_-.x7 " * 10, step=max(DEFAULT_MAX_STEPS, 12), photoz=True,
                        seen_patterns=PATTERNS)
    state._patterns = PATTERNS  # every flag at once (no real residual vector raises them all)
    return state


def test_worst_case_prompt_fits_an_8192_token_context_with_margin(sedscale_cache_dir: Path) -> None:
    from transformers import PreTrainedTokenizerFast  # the class the tiny model saves (AutoTokenizer: 5x the import time)

    options = LLMOptions()
    policy = LLMPolicy(base_url="http://127.0.0.1:9/v1", knowledge=_full_knowledge(), options=options,
                       photoz=True, base_config=_widest_config())
    state = _worst_state()
    messages = policy.prompt.messages(state)
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    suffix = messages[-1]["content"]
    assert "tried:" in suffix and "note:" in suffix and all(p in suffix for p in PATTERNS)
    assert policy.prompt.digest.count("\n") >= 5  # the digest is at its line cap
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(build_tiny_llama(sedscale_cache_dir)))
    ids = chat_token_ids(tokenizer, messages)
    n_tokens = len(ids)
    chars = len(tokenizer.decode(ids))  # the whole rendered prompt: template, headers and dates included
    print(f"\nworst-case prompt: {chars} chars rendered ({len(messages[0]['content'])} prefix + {len(suffix)} "
          f"state), {n_tokens} tiny-tokenizer tokens ({chars / n_tokens:.2f} chars/token) + max_tokens "
          f"{options.max_tokens} = {n_tokens + options.max_tokens} of {CONTEXT}; "
          f"Llama-3 estimated at ~4 chars/token: ~{chars // 4} tokens")
    assert n_tokens + options.max_tokens <= MARGIN * CONTEXT
