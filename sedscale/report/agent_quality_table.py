"""Terminal output of ``sedscale bench agent-quality``: the strategies' figures, the
``rules ÷ exhaustive`` ratios, per-class medians, the dusty high-A_V figure and issue 17's targets."""

from __future__ import annotations

from typing import Any, Optional

from rich.console import Console
from rich.table import Table

from sedscale.report.agent_quality_metrics import METRIC_KEYS

_HEADERS = {"models_per_source": "models × nodes /src", "logmstar_abs_err_median": "med |Δ log M*|",
            "logsfr_abs_err_median": "med |Δ log SFR|", "av_abs_err_median": "med |ΔA_V|",
            "accepted_fraction": "accepted", "agent_steps_per_source": "steps /src",
            "tokens_per_source": "tokens /src", "seconds_per_source": "s /src"}


def _cell(value: Optional[float], digits: int = 3) -> str:
    """A figure as printed: thousands separated, else 3 significant digits; '-' for null."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"


def strategies_table(obj: dict[str, Any], details: dict[str, Any]) -> Table:
    """One row per strategy: the 8 figures of OUT.json."""
    table = Table(title=f"sedscale bench agent-quality ({obj['n_sources']} sources)")
    table.add_column("strategy")
    table.add_column("sources", justify="right")
    for key in METRIC_KEYS:
        table.add_column(_HEADERS[key], justify="right")
    for name, metrics in obj["strategies"].items():
        n = details["sources_per_strategy"].get(name, obj["n_sources"])
        table.add_row(name, str(n), *(_cell(metrics[k]) for k in METRIC_KEYS))
    return table


def class_table(details: dict[str, Any], strategies: list[str]) -> Table:
    """Median |Δ log M*| per truth_class and strategy, and the dusty true-A_V > 3 median |ΔA_V|."""
    table = Table(title="median |Δ log M*| by truth_class; dusty with true A_V > 3: median |ΔA_V|")
    table.add_column("class")
    for name in strategies:
        table.add_column(name, justify="right")
    for cls, by_strategy in details["class_logmstar_median"].items():
        table.add_row(cls, *(_cell(by_strategy.get(name)) for name in strategies))
    dusty = details["dusty_av_gt3_av_median"]
    table.add_row("dusty A_V>3: |ΔA_V|", *(_cell(dusty.get(name)) for name in strategies))
    return table


def targets_table(details: dict[str, Any]) -> Table:
    """``rules ÷ exhaustive`` for each error and the model evaluations, then the issue's other
    targets; a row with a target says whether it is met."""
    table = Table(title="rules ÷ exhaustive, and issue 17's targets for rules")
    for col in ("figure", "value", "target", "met"):
        table.add_column(col)
    targets = dict(details["targets"])
    for label, value in details["rules_over_exhaustive"].items():
        target = targets.pop(f"rules ÷ exhaustive {label}", None)
        table.add_row(f"rules ÷ exhaustive {label}", _cell(value), *_target_cells(target))
    for label, target in targets.items():
        table.add_row(label, _cell(target["value"]), *_target_cells(target))
    return table


def _target_cells(target: Optional[dict[str, Any]]) -> tuple[str, str]:
    """The (target, met) cells of a row; empty for a figure without a target."""
    if target is None:
        return "", ""
    met = "-" if target["met"] is None else ("yes" if target["met"] else "no")
    return f"≤ {target['limit']:g}", met


def print_report(console: Console, obj: dict[str, Any], details: dict[str, Any]) -> None:
    """Everything the benchmark prints on the terminal."""
    strategies = list(obj["strategies"])
    console.print(strategies_table(obj, details))
    for name, note in details["notes"].items():
        console.print(f"[bold]{name}[/bold]: {note}")
        same = details.get(f"{name.removesuffix('_kb')}_on_{name}_sources")
        if same is not None:
            figures = ", ".join(f"{_HEADERS[k]} {_cell(same[k])}" for k in METRIC_KEYS[:5])
            console.print(f"  {name.removesuffix('_kb')} (no knowledge) on the same sources: {figures}")
    console.print(class_table(details, strategies))
    console.print(targets_table(details))
