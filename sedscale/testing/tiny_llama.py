"""A tiny random-weight Llama that the CPU build of vLLM can serve in tests and on laptops.

No GPU, no download: the model is built here, deterministically, from a ``transformers``
``LlamaConfig`` (hidden 128, 2 layers, 2 heads, intermediate 256, 8,192 positions, bf16 — under
2 MB) and a byte-level BPE tokenizer trained offline with ``tokenizers`` on text embedded in this
module, saved with Llama-3 special tokens and the Llama-3.1 chat template (AstroSage-8B is
Llama-3.1-8B based), so the tests send prompts through the same template path as the real model:
vLLM renders the chat messages with the template saved with the model (transformers 5 writes it
to ``chat_template.jinja``; AstroSage-8B's is the ``chat_template`` of its ``tokenizer_config.json``).

8,192 positions, like the context sedscale's recipes serve AstroSage-8B with
(``--max-model-len 8192``), so the README's laptop line runs unchanged on this model.

A random model writes random tokens — which is the point: every reply path (structured output,
validation, fallback) must survive it. With ``--structured-outputs-config`` and a bounded JSON
schema its replies are still valid JSON.

Built once per cache directory (a file lock makes concurrent test sessions wait for one builder,
and the folder appears atomically by rename), keyed by :data:`RECIPE_VERSION`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

#: Bump when anything below changes the bytes written; old caches are then ignored, not reused.
RECIPE_VERSION = "2"  # 2: Llama-3.1 chat template, 8,192 positions

#: The name tests serve the tiny model under (``--served-model-name``).
TINY_MODEL_NAME = "sedscale-tiny-llama"

BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"
EOT = "<|eot_id|>"
START_HEADER = "<|start_header_id|>"
END_HEADER = "<|end_header_id|>"
SPECIAL_TOKENS = [BOS, EOS, START_HEADER, END_HEADER, EOT]

#: Context length of the tiny model (positions, tokenizer ``model_max_length``).
MAX_POSITIONS = 8192

#: What Llama 3.1's template writes at the top of every system turn (its knowledge cut-off and
#: the template's default date), before the system message's own content.
LLAMA31_SYSTEM_PREAMBLE = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"

#: Llama-3.1 chat format, as Meta's template renders a conversation without tools: BOS; a system
#: turn always (the preamble, then the first message's content if it is a system message,
#: trimmed); every other turn as ``<|start_header_id|>role<|end_header_id|>\n\n content
#: <|eot_id|>``; the assistant header as the generation prompt. ``date_string`` overrides the
#: date as in Meta's template. The tool-calling branches are left out: the LLM policy sends none.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\n' }}"
    "{{- 'Today Date: ' + date_string + '\n\n' }}"
    "{{- system_message }}"
    "{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)

_VOCAB_SIZE = 1024

# Text the tokenizer learns from: embedded so the merges are identical on every machine.
_CORPUS = """\
You are an expert astronomer fitting spectral energy distributions of galaxies.
The photometry is given in microjansky for the bands euclid_vis euclid_y euclid_j euclid_h,
roman_f062 roman_f087 roman_f106 roman_f129 roman_f146 roman_f158 roman_f184 roman_f213 and
lsst_u lsst_g lsst_r lsst_i lsst_z lsst_y. Propose one change to the fit configuration.
Reply with a JSON object: {"action": "set_parameter", "module": "dustatt", "parameter": "av",
"values": [0.0, 0.5, 1.0, 2.0], "reason": "the UV is over-predicted"}.
Residuals in sigma: -3.2, 1.5, 0.4, 2.8, -0.7. Reduced chi2 = 12.4 with 7 degrees of freedom.
Stellar mass, star formation rate, age, dust attenuation, metallicity, AGN fraction, redshift.
The quick brown fox jumps over the lazy dog. 0123456789 +-*/=<>()[]{}:;,.'"!?_@#$%^&|~`
Beautiful is better than ugly. Explicit is better than implicit. Simple is better than complex.
"""


def chat_token_ids(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """The token ids ``tokenizer``'s own chat template makes of ``messages`` with the generation
    prompt: what vLLM's chat endpoint feeds the model, so ``len()`` of it is the request's
    ``usage.prompt_tokens``. (transformers 5 returns a ``BatchEncoding``, 4 a plain list.)"""
    out = tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=True)
    ids = out["input_ids"] if isinstance(out, Mapping) else out
    return [int(i) for i in ids]


def default_cache_dir() -> Path:
    """``$SEDSCALE_TINY_LLAMA_DIR`` or ``$XDG_CACHE_HOME/sedscale`` (``~/.cache/sedscale``)."""
    env = os.environ.get("SEDSCALE_TINY_LLAMA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "sedscale"


def tiny_llama_path(cache_dir: Path | None = None) -> Path:
    """Where the model for this recipe version lives (built or not)."""
    return (cache_dir or default_cache_dir()) / f"tiny-llama-v{RECIPE_VERSION}"


def _is_complete(path: Path) -> bool:
    return (path / ".complete").exists()


def build_tiny_llama(cache_dir: Path | None = None) -> Path:
    """The tiny model's directory, built on first call (seconds) and reused afterwards.

    Safe to call from several processes at once: one builds under an exclusive lock, the others
    wait and then reuse its result.
    """
    target = tiny_llama_path(cache_dir)
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_complete(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        staging.chmod(0o755)
        try:
            _write_tokenizer(staging)
            _write_model(staging)
            (staging / ".complete").write_text(RECIPE_VERSION + "\n")
            if target.exists():  # an incomplete leftover from a killed build
                shutil.rmtree(target)
            os.rename(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _write_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, bos_id)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOT, pad_token=EOS, model_max_length=MAX_POSITIONS
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))


def _write_model(out: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(out))
    eot_id = tok.convert_tokens_to_ids(EOT)
    eos_id = tok.convert_tokens_to_ids(EOS)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tok.convert_tokens_to_ids(BOS),
        eos_token_id=[eot_id, eos_id],
        pad_token_id=eos_id,
        tie_word_embeddings=False,
    )
    config.dtype = "bfloat16"
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        # transformers decorates ``PreTrainedModel.to`` with functools.wraps, whose typeshed type
        # does not bind ``self`` on an instance (mypy then wants the model as the first argument)
        model = LlamaForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(str(out), safe_serialization=True)
    # vLLM reads default sampling parameters (stop ids) from here.
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": config.bos_token_id, "eos_token_id": [eot_id, eos_id]}, indent=2)
    )


if __name__ == "__main__":  # python -m sedscale.testing.tiny_llama [CACHE_DIR]
    import sys

    print(build_tiny_llama(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
