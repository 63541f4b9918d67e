"""The tiny Llama other layers' tests serve: deterministic, small, Llama-3 chat format."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sedscale.testing.tiny_llama import EOT, RECIPE_VERSION, build_tiny_llama, tiny_llama_path


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


def test_config_and_chat_template_are_llama3_style(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    config = json.loads((tiny_model / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (128, 2, 2)
    assert config["intermediate_size"] == 256 and config["max_position_embeddings"] == 4096
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    text = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert tok.convert_tokens_to_ids(EOT) in config["eos_token_id"]
    assert tok.decode(tok("chi2 = 12.4", add_special_tokens=False)["input_ids"]) == "chi2 = 12.4"
