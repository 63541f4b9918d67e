"""The results contract (DESIGN.md section 4): one row per input row, these columns.

``sedscale fit``, the campaign store and ``sedscale export`` all build their tables from this one
schema, so the columns cannot drift apart. Extend by appending fields; never rename.
"""

from __future__ import annotations

import pyarrow as pa

STATUS_FITTED = "fitted"
STATUS_QUARANTINED = "quarantined"
STATUS_FAILED = "failed"
STATUSES = (STATUS_FITTED, STATUS_QUARANTINED, STATUS_FAILED)

RESULTS_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.int64()),  # null only when the input id itself was null
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),  # reason code + message for quarantined / failed
        pa.field("redshift", pa.float64()),  # the input one, or the photo-z estimate
        pa.field("z_phot", pa.float64()),
        pa.field("z_phot_err", pa.float64()),
        pa.field("logmstar", pa.float64()),
        pa.field("logmstar_err", pa.float64()),
        pa.field("logsfr", pa.float64()),
        pa.field("logsfr_err", pa.float64()),
        pa.field("av", pa.float64()),
        pa.field("chi2_red", pa.float64()),
        pa.field("accepted", pa.bool_()),
        pa.field("n_bands", pa.int32()),
        pa.field("agent_steps", pa.int32()),
        pa.field("llm_calls", pa.int32()),
        pa.field("tokens_prompt", pa.int64()),
        pa.field("tokens_cached", pa.int64()),
        pa.field("tokens_completion", pa.int64()),
        pa.field("gpu_seconds", pa.float64()),
        pa.field("fit_seconds", pa.float64()),
    ]
)

RESULT_COLUMNS = tuple(RESULTS_SCHEMA.names)
