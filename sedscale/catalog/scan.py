"""A whole-catalog validation pass: plan, find duplicate ids, validate partition by partition.

Streaming: one partition's projected columns in memory at a time. Used by ``sedscale validate``;
campaigns run the same :func:`validate_table` inside each partition task instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from sedscale.catalog.duplicates import find_duplicate_ids
from sedscale.catalog.partition import Partition
from sedscale.catalog.plan import DEFAULT_ROWS_PER_PARTITION, plan_partitions
from sedscale.catalog.profiles import CatalogProfile
from sedscale.catalog.read import read_partition
from sedscale.catalog.source import CatalogSource
from sedscale.catalog.validate import ValidationOutcome, ValidationRules, validate_table


@dataclass
class CatalogValidation:
    rows_total: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)  # reason -> a few messages (with file)

    def as_json(self) -> dict[str, object]:
        return {
            "rows_total": self.rows_total,
            "rows_valid": self.rows_valid,
            "rows_quarantined": self.rows_quarantined,
            "reasons": dict(sorted(self.reasons.items())),
            "samples": self.samples,
        }


def validate_catalog(
    source: CatalogSource,
    profile: CatalogProfile,
    rules: ValidationRules | None = None,
    *,
    rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION,
    workdir: Optional[Path] = None,
    samples_per_reason: int = 3,
    on_partition: Optional[Callable[[int, int], None]] = None,
) -> CatalogValidation:
    """Counts of valid and quarantined rows (by reason) over the whole catalog."""
    partitions = plan_partitions(source, rows_per_partition)
    out = CatalogValidation()
    for part, outcome in validated_partitions(source, profile, partitions, rules, workdir=workdir):
        out.rows_total += outcome.n_rows
        out.rows_valid += outcome.n_valid
        out.rows_quarantined += outcome.n_quarantined
        out.reasons.update(outcome.reasons)
        if outcome.n_quarantined:
            for reason, message in zip(outcome.quarantine["reason"].to_pylist(), outcome.quarantine["message"].to_pylist()):
                bucket = out.samples.setdefault(reason, [])
                if len(bucket) < samples_per_reason:
                    bucket.append(f"{Path(part.file).name}: {message}")
        if on_partition:
            on_partition(outcome.n_rows, len(partitions))
    return out


def validated_partitions(
    source: CatalogSource,
    profile: CatalogProfile,
    partitions: list[Partition],
    rules: ValidationRules | None = None,
    *,
    workdir: Optional[Path] = None,
) -> Iterator[tuple[Partition, ValidationOutcome]]:
    """Each of ``partitions`` (:func:`plan_partitions` of ``source``) with its validation outcome,
    in order — duplicate ids found across the whole catalog first, one partition's projected
    columns in memory at a time."""
    dup_index = find_duplicate_ids(source, profile.id, workdir)
    columns = profile.columns()
    for part in partitions:
        table = read_partition(part, columns, profile.optional_columns())
        dups = dup_index.rows_in(part.file_index, part.row_start, part.row_stop)
        yield part, validate_table(table, profile, rules, duplicate_rows=dups, row_offset=part.row_start)
