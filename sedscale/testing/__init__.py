"""Test helpers shipped with the package so every layer's tests (and users' own) can reuse them.

* :mod:`sedscale.testing.tiny_llama` — ``build_tiny_llama(cache_dir=None) -> Path``: the tiny
  random-weight Llama (Llama-3 chat template) that the CPU vLLM serves, built once per cache dir.
* :mod:`sedscale.testing.llm` — ``tiny_llm_settings(model_path=None, instances=1, ...)``:
  :class:`~sedscale.serve.settings.LLMSettings` serving it on CPU on a free loopback port.
"""
