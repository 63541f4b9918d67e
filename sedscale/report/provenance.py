"""The campaign's provenance in the report: read ``provenance.json`` and render it as a table.

Why here: the report must show what produced the results (versions, workflow, model and weights
fingerprint, prompt version, knowledge hash, seeds) next to what they cost. Campaigns made before
the record existed have none: :func:`load_provenance` returns None and the report says nothing.
"""

from __future__ import annotations

import html
import json
from typing import Any

from sedscale.campaign.paths import CampaignPaths

#: Rows of the HTML table: (label, key in the record), in display order.
_ROWS = (
    ("sedscale version", "sedscale_version"),
    ("physics version", "physics_version"),
    ("results schema hash", "results_schema_hash"),
    ("policy", "policy"),
    ("prompt version", "prompt_version"),
    ("knowledge base sha256 at start", "knowledge_sha256"),
)


def load_provenance(paths: CampaignPaths) -> dict[str, Any] | None:
    """The campaign's provenance record, or None when it has none (made by an older sedscale)."""
    try:
        data = json.loads(paths.provenance_json.read_text())
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def _compact(value: Any) -> str:
    """A value as short text: JSON for mappings and lists, ``—`` for none."""
    if value is None:
        return "—"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _rows(prov: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(label, _compact(prov.get(key))) for label, key in _ROWS]
    llm = prov.get("llm")
    if isinstance(llm, dict):
        rows += [("LLM model", _compact(llm.get("model"))), ("LLM url", _compact(llm.get("url"))),
                 ("LLM weights", _compact(llm.get("weights_path"))),
                 ("LLM weights fingerprint", _compact(llm.get("weights_fingerprint")))]
    seeds = prov.get("seeds")
    if isinstance(seeds, dict):
        rows += [(f"seed: {k}", _compact(v)) for k, v in sorted(seeds.items())]
    rows.append(("workflow", _compact(prov.get("workflow"))))
    return rows


def provenance_html(prov: dict[str, Any]) -> str:
    """A small HTML table of the record, every value escaped."""
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>"
                    for k, v in _rows(prov))
    return f"<table class=\"provenance\">{cells}</table>"
