"""The tiny Llama other layers' tests serve: deterministic, small, Llama-3.1 chat format."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sedscale.testing.tiny_llama import (
    END_HEADER,
    EOT,
    RECIPE_VERSION,
    SPECIAL_TOKENS,
    START_HEADER,
    build_tiny_llama,
    chat_token_ids,
    tiny_llama_path,
)


def _digest(folder: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("model.safetensors", "tokenizer.json", "config.json")
    }


def test_build_is_deterministic_and_cached(tiny_model: Path, tmp_path: Path) -> None:
    again = build_tiny_llama(tmp_path)
    assert again == tiny_llama_path(tmp_path) and again.name == f"tiny-llama-v{RECIPE_VERSION}"
    assert _digest(again) == _digest(tiny_model)
    mtime = (again / "model.safetensors").stat().st_mtime
    assert build_tiny_llama(tmp_path) == again  # second call reuses, does not rebuild
    assert (again / "model.safetensors").stat().st_mtime == mtime
    assert (again / "model.safetensors").stat().st_size < 2_000_000


def test_config_and_chat_template_are_llama31_style(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    config = json.loads((tiny_model / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (128, 2, 2)
    assert config["intermediate_size"] == 256 and config["max_position_embeddings"] == 8192
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    text = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    # Llama 3.1 writes the system header (with its dates) even when the conversation has no system turn
    bare = tok.apply_chat_template([{"role": "user", "content": " U "}], tokenize=False, add_generation_prompt=False)
    assert bare == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
    )
    # every special token of the template is one token of the trained vocabulary, never split
    ids = chat_token_ids(tok, [{"role": "user", "content": "U"}])
    for special in SPECIAL_TOKENS:
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1, special
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id
    assert ids.count(tok.convert_tokens_to_ids(START_HEADER)) == 3 == ids.count(tok.convert_tokens_to_ids(END_HEADER))
    assert ids[0] == tok.convert_tokens_to_ids("<|begin_of_text|>") and ids.count(ids[0]) == 1
    assert tok.model_max_length == 8192
    assert tok.convert_tokens_to_ids(EOT) in config["eos_token_id"]
    assert tok.decode(tok("chi2 = 12.4", add_special_tokens=False)["input_ids"]) == "chi2 = 12.4"
