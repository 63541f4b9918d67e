"""What a campaign ran with, recorded once: ``provenance.json``.

Why: a reader of a results file must be able to say which code, physics, prompt, model and
knowledge produced it, long after the software moved on. The record is written atomically when
the campaign is created (everything in it is known then) and never rewritten: ``resume`` re-runs
with the same frozen inputs, so it has nothing new to say.

Fields: ``sedscale_version``, ``physics_version`` (the grid's ``PHYSICS_VERSION``),
``results_schema_hash``, ``workflow`` (full), ``policy``, ``llm`` (model name, weights path and
fingerprint; null when the policy is not ``llm``), ``prompt_version``
(:data:`sedscale.agent.prompt.PROMPT_VERSION`), ``knowledge_sha256`` (the knowledge base every
task starts from), ``seeds``.

The weights fingerprint (:func:`weights_fingerprint`) is a sha256 over the sorted list of
(relative name, size) of every file under the weights directory, plus the full bytes of its small
``.json``/``.txt`` files (config, tokenizer config, chat template, ...) — never the GBs of
weights themselves, so it takes milliseconds; it changes when a file is added, removed, resized
or a config edited, not when only modification times change.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from sedscale import __version__
from sedscale.agent.knowledge import KnowledgeBase
from sedscale.agent.prompt import PROMPT_VERSION
from sedscale.campaign.paths import CampaignPaths
from sedscale.fsutil import atomic_write
from sedscale.results import RESULTS_SCHEMA
from sedscale.sed.grid import PHYSICS_VERSION

#: Config files up to this size are hashed in full by :func:`weights_fingerprint`.
SMALL_CONFIG_BYTES = 1 << 20
_CONFIG_SUFFIXES = (".json", ".txt")
#: How every agent seed derives from the campaign seed (sedscale.agent.seeds).
SEED_DERIVATION = "(campaign seed, source id, step): agent selection, rules tie-breaks and LLM sampling seeds"


def results_schema_hash() -> str:
    """sha256 of the results contract's column names and types, in order."""
    text = "\n".join(f"{f.name}:{f.type}" for f in RESULTS_SCHEMA)
    return hashlib.sha256(text.encode()).hexdigest()


def knowledge_sha256(knowledge: KnowledgeBase) -> str:
    """sha256 of a knowledge base's canonical JSON."""
    return hashlib.sha256(json.dumps(knowledge.to_dict(), sort_keys=True).encode()).hexdigest()


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the sorted (relative name, size) of every file under ``folder``, plus the bytes
    of its small json/txt files (the module docstring says why not the weights)."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\n".encode())
        if path.suffix in _CONFIG_SUFFIXES and size <= SMALL_CONFIG_BYTES:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def llm_record(workflow: Mapping[str, Any], site: Mapping[str, Any]) -> dict[str, Any] | None:
    """The LLM a campaign of policy ``llm`` uses: its name, where its weights are and their
    fingerprint (null where the directory is not readable at creation, e.g. a node-local path)."""
    if workflow.get("policy") != "llm":
        return None
    site_llm = site.get("llm") or {}
    model = workflow.get("llm_model") or site_llm.get("served_model_name") or site_llm.get("model_path")
    record: dict[str, Any] = {"model": model, "url": workflow.get("llm_url"), "weights_path": None,
                              "weights_fingerprint": None}
    path_text = site_llm.get("model_path") if not workflow.get("llm_url") else None
    if path_text:
        folder = Path(os.path.expandvars(os.path.expanduser(str(path_text))))
        record["weights_path"] = str(folder)
        if folder.is_dir():
            record["weights_fingerprint"] = weights_fingerprint(folder)
    return record


def build_provenance(workflow: Mapping[str, Any], site: Mapping[str, Any], *, seed: int = 0,
                     knowledge: KnowledgeBase | None = None) -> dict[str, Any]:
    """The provenance record of a campaign with these frozen inputs (JSON-ready).

    ``seed``: the campaign seed (campaign tasks run with 0 today: ``FitOptions.seed``);
    ``knowledge``: the base every task starts from (empty today)."""
    return {
        "sedscale_version": __version__,
        "physics_version": PHYSICS_VERSION,
        "results_schema_hash": results_schema_hash(),
        "workflow": dict(workflow),
        "policy": workflow.get("policy"),
        "llm": llm_record(workflow, site),
        "prompt_version": PROMPT_VERSION,
        "knowledge_sha256": knowledge_sha256(knowledge if knowledge is not None else KnowledgeBase()),
        "seeds": {"campaign_seed": int(seed), "derivation": SEED_DERIVATION},
    }


def write_provenance(paths: CampaignPaths, record: Mapping[str, Any]) -> Path:
    """``provenance.json``, atomically."""
    data = json.dumps(record, indent=1, sort_keys=True, default=str).encode()
    atomic_write(paths.provenance_json, data)
    return paths.provenance_json
