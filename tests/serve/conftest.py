"""The serving tests share the session's vLLM service fixtures of tests/conftest.py
(``tiny_model``, ``llm_settings``, ``llm_service``); the kill/restart test starts its own pair."""
