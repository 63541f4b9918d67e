"""Turn a validated action into the next :class:`FitConfig` — or reject it with a reason.

Pure data in, pure data out: the current configuration is dumped to a dict, one documented edit
is made, and the dict goes back through ``FitConfig.model_validate`` (bounds, law/parameter
consistency). Nothing here touches files, processes or code. A rejected action raises
:class:`~sedscale.agent.actions.ActionError` whose ``code`` the accounting records.

Step sizes for widen / shift are per parameter (:data:`STEPS`): multiplicative for quantities
spanning decades (ages, τ, metallicity, U_min), additive otherwise.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from sedscale.agent.actions import (
    Accept,
    Action,
    ActionError,
    Disable,
    DustLaw,
    Enable,
    GiveUp,
    Narrow,
    RedshiftPrior,
    SetValues,
    SFHFamily,
    Shift,
    Widen,
)
from sedscale.sed.config import AGN_DEFAULT_REFERENCE_AA, PARAMETER_BOUNDS, FitConfig

#: ``param`` → ("log", factor) or ("lin", step) used by widen and shift.
STEPS: dict[str, tuple[str, float]] = {
    "sfh.age": ("log", 2.0),
    "sfh.tau": ("log", 3.0),
    "sfh.burst_age": ("log", 2.5),
    "sfh.burst_fraction": ("lin", 0.1),
    "stellar.metallicity": ("log", 2.5),
    "dust_attenuation.av": ("lin", 1.0),
    "dust_attenuation.delta": ("lin", 0.25),
    "dust_attenuation.bump": ("lin", 1.5),
    "dust_attenuation.young_factor": ("lin", 0.5),
    "nebular.logu": ("lin", 0.5),
    "dust_emission.umin": ("log", 3.0),
    "dust_emission.qpah": ("lin", 1.0),
    "dust_emission.gamma": ("lin", 0.1),
    "agn.frac_agn": ("lin", 0.2),
    "agn.av_agn": ("lin", 1.0),
}

#: Value lists a module or law switch brings with it when the current list is the default.
BURST_FRACTIONS = [0.0, 0.03, 0.1, 0.3]  # 0 keeps the burst-free models in the grid
BURST_AGES = [3.0, 10.0, 30.0]
MODIFIED_STARBURST_DELTA = [-0.5, -0.25, 0.0]
#: Switching the AGN on opens its axes fully (CIGALE-like fractions up to 0.95, and an obscured
#: option): with the default [0, 0.1, 0.3, 0.5] and an unobscured disk only, an AGN-dominated or
#: reddened-AGN source ("little red dot") needs two more edits that each help only together.
AGN_ON_FRACTIONS = [0.0, 0.2, 0.5, 0.8, 0.95]
AGN_ON_AV = [0.0, 2.0]
#: Switching the AGN on defines frac_agn at this rest wavelength (``agn.fraction_at``), not as a
#: share of the IR luminosity: in the IR mode a bright disk exists only beside heavy host dust,
#: which inflates the host (issue 17: the AGN class's log M* error +0.37 → +0.83 dex, A_V +1.6).
#: A configuration that has the AGN on already keeps its mode.
AGN_ON_REFERENCE_AA = AGN_DEFAULT_REFERENCE_AA
MAX_LIST = 12  # a value list may not grow beyond this many entries


@dataclass(frozen=True)
class ApplyLimits:
    """Guards on the configurations an action may produce."""

    max_models: int = 40_000  # models per redshift node (grid size, hence fit cost)
    max_list: int = MAX_LIST


def _round(v: float) -> float:
    return float(f"{v:.4g}")


def _clip_list(param: str, values: list[float]) -> list[float]:
    b = PARAMETER_BOUNDS[param]
    return sorted({_round(min(max(v, b.min), b.max)) for v in values})


def _step(param: str, v: float, up: bool) -> float:
    kind, size = STEPS[param]
    if kind == "log":
        if v <= 0:
            return PARAMETER_BOUNDS[param].min if not up else max(PARAMETER_BOUNDS[param].min, size * 1e-3)
        return v * size if up else v / size
    return v + size if up else v - size


def _get(data: dict[str, Any], param: str) -> list[float]:
    section, field = param.split(".")
    return list(data[section][field])


def _put(data: dict[str, Any], param: str, values: list[float]) -> None:
    section, field = param.split(".")
    data[section][field] = values


def _module_on(cfg: FitConfig, module: str) -> bool:
    if module == "burst":
        return cfg.sfh.family == "delayed_burst"
    return bool(getattr(cfg, module).enabled)


def _open_agn_axes(config: FitConfig, data: dict[str, Any], limits: ApplyLimits) -> None:
    """Widen the AGN's default value lists to :data:`AGN_ON_FRACTIONS` / :data:`AGN_ON_AV` when
    switching it on — as far as the grid stays within ``limits.max_models`` (the obscured option
    goes first), so that enabling the AGN is never refused for the size its defaults add."""
    base = config.n_models  # the AGN is off here: its axes do not count yet
    if data["agn"]["frac_agn"] == [0.0, 0.1, 0.3, 0.5] and data["agn"]["av_agn"] == [0.0]:
        if base * len(AGN_ON_FRACTIONS) * len(AGN_ON_AV) <= limits.max_models:
            data["agn"]["frac_agn"], data["agn"]["av_agn"] = list(AGN_ON_FRACTIONS), list(AGN_ON_AV)
        elif base * 4 * len(AGN_ON_AV) <= limits.max_models:
            data["agn"]["av_agn"] = list(AGN_ON_AV)


_MEMO_SIZE = 2048


@dataclass(frozen=True)
class _Rejected:
    """A memoised rejection: the :class:`ActionError`'s code and detail, never the exception
    itself — a caught exception holds its traceback, whose frames (and their callers') hold the
    whole partition being fitted (rows, photometry, results), and the memo outlives partitions."""

    code: str
    detail: str


_MemoKey = tuple[str, str, bool, ApplyLimits]  # (config hash, action JSON, photo-z, limits)
_memo: OrderedDict[_MemoKey, FitConfig | _Rejected] = OrderedDict()


def apply_action(
    config: FitConfig,
    action: Action,
    *,
    estimates: Mapping[str, tuple[float, float]] | None = None,
    photoz: bool = False,
    limits: ApplyLimits = ApplyLimits(),
) -> FitConfig:
    """The configuration after ``action``; :class:`ActionError` if it is illegal or changes nothing.

    ``estimates`` (name → (mean, std) of the current fit, names as in ``FitResult.estimates``)
    lets ``narrow`` keep the values near the current estimate.

    Every action but ``narrow`` depends only on the configuration, the action and the limits, and
    the rules policy asks the same few dozen of them for thousands of sources sharing a handful
    of configurations; so their outcomes (configs are frozen) are memoised per process.
    """
    if isinstance(action, Narrow):  # depends on this source's estimates
        return _apply_action(config, action, estimates=estimates, photoz=photoz, limits=limits)
    key = (config.hash(), action.model_dump_json(), photoz, limits)
    hit = _memo.get(key)
    if hit is None:
        try:
            hit = _apply_action(config, action, estimates=None, photoz=photoz, limits=limits)
        except ActionError as exc:
            hit = _Rejected(exc.code, exc.detail)
        _memo[key] = hit
        if len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    if isinstance(hit, _Rejected):
        raise ActionError(hit.code, hit.detail)
    return hit


def _apply_action(
    config: FitConfig,
    action: Action,
    *,
    estimates: Mapping[str, tuple[float, float]] | None,
    photoz: bool,
    limits: ApplyLimits,
) -> FitConfig:
    """:func:`apply_action`, computed: one edit of the configuration's dict, then its checks."""
    if isinstance(action, (Accept, GiveUp)):
        raise ActionError("terminal_action", f"{action.op} does not change the configuration")
    data = config.model_dump(mode="python")
    if isinstance(action, (Enable, Disable)):
        _edit_module(config, data, action, limits)
    elif isinstance(action, DustLaw):
        _edit_dust_law(config, data, action)
    elif isinstance(action, SFHFamily):
        if config.sfh.family == action.family:
            raise ActionError("no_change", f"the SFH family is already {action.family}")
        data["sfh"]["family"] = action.family
    elif isinstance(action, (SetValues, Widen, Shift, Narrow)):
        _put(data, action.param, _edited_values(_get(data, action.param), action, estimates))
    elif isinstance(action, RedshiftPrior):
        _edit_redshift_prior(data, action, photoz)
    else:  # pragma: no cover - the union is closed
        raise ActionError("invalid_action", f"unknown action {type(action).__name__}")
    return _checked(config, action, data, limits)


def _edit_module(config: FitConfig, data: dict[str, Any], action: Enable | Disable, limits: ApplyLimits) -> None:
    """Switch a module on or off (the burst is an SFH family; the AGN opens its axes when switched on)."""
    want = isinstance(action, Enable)
    if _module_on(config, action.module) == want:
        raise ActionError("no_change", f"{action.module} is already {'on' if want else 'off'}")
    if action.module == "burst":
        sfh = data["sfh"]
        if not want:
            sfh["family"] = "delayed"
            return
        sfh["family"] = "delayed_burst"
        if sfh["burst_fraction"] == [0.1]:
            sfh["burst_fraction"] = list(BURST_FRACTIONS)
        if sfh["burst_age"] == [20.0]:
            sfh["burst_age"] = list(BURST_AGES)
        return
    data[action.module]["enabled"] = want
    if action.module == "agn" and want:
        _open_agn_axes(config, data, limits)
        data["agn"]["fraction_at"] = AGN_ON_REFERENCE_AA


def _edit_dust_law(config: FitConfig, data: dict[str, Any], action: DustLaw) -> None:
    """Change the attenuation law (the modified starburst brings its slope list; others drop it)."""
    if config.dust_attenuation.law == action.law:
        raise ActionError("no_change", f"the dust law is already {action.law}")
    da = data["dust_attenuation"]
    da["law"] = action.law
    if action.law == "modified_starburst":
        if da["delta"] == [0.0]:
            da["delta"] = list(MODIFIED_STARBURST_DELTA)
    else:
        da["delta"], da["bump"] = [0.0], [0.0]
    da["enabled"] = True


def _edited_values(values: list[float], action: SetValues | Widen | Shift | Narrow,
                   estimates: Mapping[str, tuple[float, float]] | None) -> list[float]:
    """The parameter's value list after a set / widen / shift / narrow."""
    param = action.param
    if isinstance(action, SetValues):
        return _clip_list(param, list(action.values))
    if isinstance(action, Widen):
        new = list(values)
        if action.side in ("up", "both"):
            new.append(_step(param, max(values), True))
        if action.side in ("down", "both"):
            new.append(_step(param, min(values), False))
        return _clip_list(param, new)
    if isinstance(action, Shift):
        return _clip_list(param, [_step(param, v, action.direction == "up") for v in values])
    return _narrowed(sorted(values), action, estimates)


def _narrowed(values: list[float], action: Narrow, estimates: Mapping[str, tuple[float, float]] | None) -> list[float]:
    """The values near the current estimate (within 2σ or one step), else the inner values."""
    if len(values) < 2:
        raise ActionError("no_change", f"{action.param} has a single value; nothing to narrow")
    est = (estimates or {}).get(action.param.split(".")[1])
    if est is None or not np.isfinite(est[0]):
        return values[1:-1] or values[:1]
    mean = float(est[0])
    std = float(est[1]) if np.isfinite(est[1]) else 0.0
    span = max(2.0 * std, abs(_step(action.param, mean, True) - mean))
    keep = [v for v in values if abs(v - mean) <= span]
    return keep or [min(values, key=lambda v: abs(v - mean))]


def _edit_redshift_prior(data: dict[str, Any], action: RedshiftPrior, photoz: bool) -> None:
    """Bound the photo-z search (photo-z mode only)."""
    if not photoz:
        raise ActionError("not_photoz", "redshift_prior applies only in photo-z mode (the redshift is known)")
    if action.z_max <= action.z_min:
        raise ActionError("invalid_action", f"z_max {action.z_max} must exceed z_min {action.z_min}")
    data["redshift"]["z_min"], data["redshift"]["z_max"] = float(action.z_min), float(action.z_max)


def _checked(config: FitConfig, action: Action, data: dict[str, Any], limits: ApplyLimits) -> FitConfig:
    """The edited dict as a :class:`FitConfig`, if it is valid, changed, effective and small enough."""
    for param in _touched(action):
        if len(_get(data, param)) > limits.max_list:
            raise ActionError("too_many_values", f"{param} would hold more than {limits.max_list} values")
    try:
        new_cfg = FitConfig.model_validate(data)
    except Exception as exc:  # pydantic.ValidationError: report its first line only
        raise ActionError("invalid_config", " ".join(str(exc).split())[:160]) from None
    if new_cfg.hash() == config.hash():
        raise ActionError("no_change", f"{action.brief()} leaves the configuration unchanged")
    if _touched(action) and new_cfg.axes() == config.axes():
        raise ActionError("no_effect", f"{action.brief()}: the module using this parameter is off")
    if new_cfg.n_models > limits.max_models:
        raise ActionError("grid_too_large", f"{new_cfg.n_models} models per redshift (limit {limits.max_models})")
    return new_cfg


def _touched(action: Action) -> list[str]:
    param = getattr(action, "param", None)
    return [param] if param else []


def describe_config(cfg: FitConfig) -> str:
    """The configuration in brief (one line), for prompts and histories."""
    parts = [f"sfh={cfg.sfh.family}"]
    da = cfg.dust_attenuation
    parts.append(f"dust={da.law if da.enabled else 'off'}")
    parts.append("neb=" + ("on" if cfg.nebular.enabled else "off"))
    parts.append("agn=" + (("on" if cfg.agn.reference_aa is None else f"on@{cfg.agn.reference_aa:g}A")
                           if cfg.agn.enabled else "off"))
    parts.append("dustem=" + ("on" if cfg.dust_emission.enabled else "off"))
    for axis, values in cfg.axes().items():
        if len(values) > 1 or axis in ("av", "frac_agn", "logu"):
            parts.append(f"{axis}=[{_range(values)}]")
    return " ".join(parts)


def _range(values: list[float]) -> str:
    if len(values) <= 3:
        return ",".join(f"{v:g}" for v in values)
    return f"{min(values):g}..{max(values):g}/{len(values)}"


# ------------------------------------------------------------------------------------------------
# the action space, enumerated (the exhaustive grid-search baseline of ``bench agent-quality``)
# ------------------------------------------------------------------------------------------------

#: The widest value lists the actions reach in one or two edits (``set`` takes at most
#: :data:`~sedscale.agent.actions.MAX_VALUES` values; ``widen`` grows a list up to ``max_list``).
#: A_V reaches 8 mag, the top of the rules' :data:`~sedscale.agent.rules.AV_DUSTY` jump, within
#: ``max_list`` values (so the triage list's own steps stay in the union): 2 mag apart above 4.
ACTION_SPACE_AV = [0.0, 0.15, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0]
ACTION_SPACE_LOGU = ([-3.0, -2.5, -2.0, -1.5, -1.0], [-3.0, -2.0, -1.0], [-3.0, -1.5], [-3.0])
AGN_MODES: tuple[str, ...] = ("off", "dust", "wavelength")


def action_space_configs(base: FitConfig, limits: ApplyLimits = ApplyLimits()) -> list[FitConfig]:
    """Every configuration family the agent can reach from ``base`` within ``limits``, each at the
    widest value lists that keep it within ``limits.max_models``: every SFH family (the burst with
    :data:`BURST_FRACTIONS` × :data:`BURST_AGES`), every attenuation law (the modified starburst
    with its slopes), the AGN off / on in the IR mode / on in the wavelength mode (its axes
    opened to :data:`AGN_ON_FRACTIONS` × :data:`AGN_ON_AV`), A_V up to 8 mag
    (:data:`ACTION_SPACE_AV`) and nebular log U from −3 to −1 (coarsened first when a family
    would exceed the limit). A family that no list choice brings within the limit is left out
    (the agent cannot reach it either: ``grid_too_large``). Deterministic order, no duplicates.

    Their union is the grid-search baseline of the agent-quality benchmark: the models any
    rules/LLM run could have tried, all at once."""
    out: dict[str, FitConfig] = {}
    for family in ("delayed", "exponential", "constant", "delayed_burst"):
        for law in ("calzetti", "smc", "modified_starburst"):
            for agn in AGN_MODES:
                cfg = _widest_within(base, family, law, agn, limits)
                if cfg is not None:
                    out.setdefault(cfg.hash(), cfg)
    return list(out.values())


def _widest_within(base: FitConfig, family: str, law: str, agn: str, limits: ApplyLimits) -> FitConfig | None:
    """One action-space family (see :func:`action_space_configs`) with the widest lists that fit."""
    data = base.model_dump(mode="python")
    sfh, da = data["sfh"], data["dust_attenuation"]
    sfh["family"] = family
    if family == "delayed_burst":
        sfh["burst_fraction"], sfh["burst_age"] = list(BURST_FRACTIONS), list(BURST_AGES)
    da["enabled"], da["law"] = True, law
    da["delta"], da["bump"] = (list(MODIFIED_STARBURST_DELTA) if law == "modified_starburst" else [0.0]), [0.0]
    da["av"] = sorted(set(ACTION_SPACE_AV) | set(da["av"]))[: limits.max_list]
    data["nebular"]["enabled"] = True
    data["agn"]["enabled"] = agn != "off"
    data["agn"]["fraction_at"] = AGN_ON_REFERENCE_AA if agn == "wavelength" else "dust"
    agn_lists = [(list(AGN_ON_FRACTIONS), list(AGN_ON_AV)), (list(AGN_ON_FRACTIONS), [0.0]),
                 ([0.0, 0.1, 0.3, 0.5], [0.0])] if agn != "off" else [(data["agn"]["frac_agn"], data["agn"]["av_agn"])]
    for fracs, avs in agn_lists:
        for logu in ACTION_SPACE_LOGU:
            data["agn"]["frac_agn"], data["agn"]["av_agn"] = fracs, avs
            data["nebular"]["logu"] = list(logu)
            cfg = FitConfig.model_validate(data)
            if cfg.n_models <= limits.max_models:
                return cfg
    return None
