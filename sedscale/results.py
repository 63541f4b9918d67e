"""The results contract (DESIGN.md section 4): one row per input row, these columns.

``sedscale fit``, the campaign store and ``sedscale export`` all build their tables from this one
schema, so the columns cannot drift apart. Extend by appending fields; never rename.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sedscale.tokens import TOKEN_COLUMNS

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
        # the input's sky position (degrees, ICRS) where the profile names one: carried, never fitted,
        # so results can be joined back by position and written as a HATS catalog
        pa.field("ra", pa.float64()),
        pa.field("dec", pa.float64()),
        # S/N >= 3 in at least one band: a faint source is fitted, flagged, its p975 an upper limit
        pa.field("detected", pa.bool_()),
        # posterior percentiles (2.5, 16, 50, 84, 97.5 %) of the likelihood-weighted grid
        *[pa.field(f"{q}_{p}", pa.float64()) for q in ("logmstar", "logsfr", "av", "z_phot")
          for p in ("p025", "p16", "p50", "p84", "p975")],
        # the best model: its index in the grid of configuration fit_config_id (so it can be rebuilt)
        pa.field("best_model", pa.int64()),
        pa.field("fit_config_id", pa.string()),
        # what the source actually got after fallbacks: none (triage only) | rules | llm
        pa.field("policy", pa.string()),
    ]
)

#: The posterior quantities with percentile columns, and the percentile suffixes (in order).
PERCENTILE_QUANTITIES = ("logmstar", "logsfr", "av", "z_phot")
PERCENTILES = {"p025": 2.5, "p16": 16.0, "p50": 50.0, "p84": 84.0, "p975": 97.5}

RESULT_COLUMNS = tuple(RESULTS_SCHEMA.names)

#: Counters that are 0 (not null) for a source that never reached the agent.
_ZERO_WHEN_FAILED = frozenset(("agent_steps", *TOKEN_COLUMNS))


def failed_rows_table(source_ids: pa.Array, reason: str) -> pa.Table:
    """Every row of a partition as ``failed`` with ``reason``: what a partition whose task failed
    after every retry commits, so its rows are accounted for (ids kept where readable).

    Here, beside the schema, because both the real fallback task and the campaign's synthetic test
    tasks commit it, and the campaign layer may not import the pipeline.
    """
    n = len(source_ids)
    columns: list[pa.Array] = []
    for field in RESULTS_SCHEMA:
        if field.name == "source_id":
            columns.append(source_ids.cast(pa.int64()))
        elif field.name == "status":
            columns.append(pa.array([STATUS_FAILED] * n, pa.string()))
        elif field.name == "reason":
            columns.append(pa.array([reason] * n, pa.string()))
        elif field.name in _ZERO_WHEN_FAILED:
            columns.append(pa.array(np.zeros(n, dtype=np.int64), field.type))
        else:  # floats, the acceptance flag and the band count: no fit, so no value
            columns.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(columns, schema=RESULTS_SCHEMA)


#: Each results column's unit as an astropy unit string (``""``: dimensionless, a count, a flag or
#: text). One table serves FITS ``TUNIT``, Parquet field metadata and xarray ``units`` attributes,
#: so the formats cannot disagree. ``dex(...)`` units parse with ``astropy.units.Unit`` (generic
#: format); FITS has no standard spelling for logarithmic units, so TUNIT carries the same string.
RESULT_UNITS: dict[str, str] = {
    "redshift": "", "z_phot": "", "z_phot_err": "",
    "logmstar": "dex(solMass)", "logmstar_err": "dex",
    "logsfr": "dex(solMass / yr)", "logsfr_err": "dex",
    "av": "mag", "chi2_red": "",
    "gpu_seconds": "s", "fit_seconds": "s",
    "ra": "deg", "dec": "deg",
    **{f"logmstar_{p}": "dex(solMass)" for p in ("p025", "p16", "p50", "p84", "p975")},
    **{f"logsfr_{p}": "dex(solMass / yr)" for p in ("p025", "p16", "p50", "p84", "p975")},
    **{f"av_{p}": "mag" for p in ("p025", "p16", "p50", "p84", "p975")},
}

#: One line per results column: what it means (FITS ``TCOMM``, Parquet field metadata, the
#: ``long_name`` of the xarray view). DESIGN.md section 4 and docs/PHYSICS.md hold the details.
RESULT_DESCRIPTIONS: dict[str, str] = {
    "source_id": "the input catalog's source id",
    "status": "fitted, quarantined or failed",
    "reason": "reason code and message of a quarantined or failed row",
    "redshift": "redshift used for the fit: the input one, or the photo-z estimate",
    "z_phot": "photometric redshift estimate (photo-z mode)",
    "z_phot_err": "uncertainty of the photometric redshift",
    "logmstar": "log10 surviving stellar mass (BC03, Kroupa IMF, Planck18)",
    "logmstar_err": "uncertainty of logmstar",
    "logsfr": "log10 star formation rate averaged over 100 Myr",
    "logsfr_err": "uncertainty of logsfr",
    "av": "V-band dust attenuation",
    "chi2_red": "reduced chi-squared of the best fit",
    "accepted": "whether the fit passed the acceptance test",
    "n_bands": "number of bands used in the fit",
    "agent_steps": "agent steps spent on the source",
    "llm_calls": "LLM requests made for the source",
    "tokens_prompt": "LLM prompt tokens spent on the source",
    "tokens_cached": "LLM prompt tokens served from the prefix cache",
    "tokens_completion": "LLM completion tokens spent on the source",
    "gpu_seconds": "GPU-seconds attributed to the source",
    "fit_seconds": "CPU wall seconds of the source's fits",
    "ra": "right ascension of the input position (ICRS)",
    "dec": "declination of the input position (ICRS)",
    "detected": "signal-to-noise >= 3 in at least one band",
    **{f"{q}_{p}": f"{pct:g}th percentile of the {q} posterior"
       for q in ("logmstar", "logsfr", "av", "z_phot")
       for p, pct in (("p025", 2.5), ("p16", 16.0), ("p50", 50.0), ("p84", 84.0), ("p975", 97.5))},
    "best_model": "index of the best-fitting model in the grid of fit_config_id",
    "fit_config_id": "hash of the fit configuration of the final fit (sedscale.sed.config)",
    "policy": ("what the final fit came from: none (the triage fit: policy none, triage accepted, not "
               "eligible, or no agent step improved on it), llm (an LLM decision is among the improving "
               "steps the kept configuration is made of), rules (all of them were rules, fallbacks "
               "included); null unless fitted"),
}


def result_unit(name: str) -> str:
    """The astropy unit string of results column ``name`` (``""`` when it has none)."""
    return RESULT_UNITS.get(name, "")


#: The Milky Way extinction law applied to a per-source E(B−V) (sedscale.sed.mw_extinction uses it).
MW_EXTINCTION_LAW = "G23 (Gordon et al. 2023), R_V = 3.1, via dust_extinction"

#: The IMF of the shipped BC03 grids, which every mass in the results assumes (established from the
#: grids' living-mass tables: docs/PHYSICS.md §3.1); log M_Chabrier = log M_Kroupa − 0.034 dex.
STELLAR_IMF = "Kroupa (2001), 0.1-100 Msun"

#: Provenance every exported table carries in its schema metadata (keys prefixed ``sedscale.``).
RESULTS_METADATA: dict[str, str] = {
    "sedscale.mw_extinction_law": MW_EXTINCTION_LAW,
    "sedscale.imf": STELLAR_IMF,
    "sedscale.mass_conversion": "log M(Chabrier) = log M(Kroupa) - 0.034 dex (Madau & Dickinson 2014)",
}


def annotated_results_schema() -> pa.Schema:
    """:data:`RESULTS_SCHEMA` with each field's ``unit`` and ``description`` in its metadata, the
    form Parquet (and the HATS export) writes so readers see units without this package."""
    fields = []
    for field in RESULTS_SCHEMA:
        meta = {"description": RESULT_DESCRIPTIONS[field.name]}
        if unit := result_unit(field.name):
            meta["unit"] = unit
        fields.append(field.with_metadata(meta))
    return pa.schema(fields, metadata=RESULTS_METADATA)
