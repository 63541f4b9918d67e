"""The LLM policy's prompt goes through the model's OWN chat template (the Llama-3.1 one), server side.

The policy sends chat messages, never raw text; vLLM renders them with the template saved with
the served model and reports ``usage.prompt_tokens``. If that count equals
``len(tokenizer.apply_chat_template(messages))`` for the same messages, the server used exactly
that template (BOS, the Llama-3.1 system header with its dates, one header per turn, the
generation prompt) — no second BOS, no raw-completion path, no template of vLLM's own.
Reuses the agent tests' session server (``agent_llm``): no extra vLLM start.
"""

from __future__ import annotations

import pytest

from sedscale.agent import AgentBudgets, LLMOptions, LLMPolicy, run_agent
from sedscale.sed.config import FitConfig
from sedscale.testing.tiny_llama import LLAMA31_SYSTEM_PREAMBLE, build_tiny_llama, chat_token_ids

from .fakes import FakeFitter, fake_photometry
from .test_llm_vllm import _wait_healthy

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_vllm_prompt_tokens_equal_the_models_chat_template_length(agent_llm, sedscale_cache_dir) -> None:
    from transformers import PreTrainedTokenizerFast  # the class the tiny model saves (AutoTokenizer: 5x the import time)

    _wait_healthy(agent_llm)
    policy = LLMPolicy(base_url=agent_llm["base_url"], api_key=agent_llm["api_key"],
                       options=LLMOptions(timeout_s=120.0, warmup=False))
    fitter = FakeFitter()
    phot = fake_photometry([3])  # one source that fails triage: exactly one request in one step
    out = run_agent(phot, fitter(phot, FitConfig()), FitConfig(), policy, partition_id=3, fit=fitter,
                    budgets=AgentBudgets(max_steps=1))
    acct = out.accounting[0]
    assert acct.llm_calls == 1 and len(policy.sent) == 1
    messages = [{"role": "system", "content": policy.prompt.prefix}, {"role": "user", "content": policy.sent[0]}]
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(build_tiny_llama(sedscale_cache_dir)))
    ids = chat_token_ids(tokenizer, messages)
    rendered = tokenizer.decode(ids)
    assert rendered.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                               + LLAMA31_SYSTEM_PREAMBLE)
    assert rendered.endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    print(f"\nprompt: {sum(len(m['content']) for m in messages)} chars of messages, "
          f"{len(ids)} tokens by apply_chat_template, server usage.prompt_tokens {acct.tokens_prompt}")
    assert acct.tokens_prompt == len(ids)
