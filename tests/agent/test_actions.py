"""The action vocabulary: schema and pydantic agree, everything is bounded, apply is safe."""

from __future__ import annotations

import itertools
import json

import jsonschema
import numpy as np
import pytest

from sedscale.agent.actions import (
    EDITABLE_PARAMETERS,
    ActionError,
    action_json_schema,
    parse_action,
    validate_action,
)
from sedscale.agent.apply import apply_action, describe_config
from sedscale.sed.config import PARAMETER_BOUNDS, FitConfig


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


@pytest.mark.parametrize("photoz", [False, True])
def test_schema_is_bounded(photoz: bool) -> None:
    schema = action_json_schema(photoz)
    jsonschema.Draft202012Validator.check_schema(schema)
    n_str = n_num = 0
    for path, node in _walk(schema):
        if node.get("type") == "string":
            n_str += 1
            assert "enum" in node or "pattern" in node, f"unbounded string at {path}"
        if node.get("type") == "number":
            n_num += 1
            assert "minimum" in node and "maximum" in node, f"unbounded number at {path}"
        if node.get("type") == "array":
            assert "maxItems" in node, f"unbounded array at {path}"
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False and set(node["required"]) == set(node["properties"])
    assert n_str > 20 and n_num >= len(EDITABLE_PARAMETERS)
    assert ("redshift_prior" in json.dumps(schema)) == photoz


def test_number_bounds_come_from_the_registry() -> None:
    schema = action_json_schema()
    for variant in schema["anyOf"]:
        props = variant["properties"]
        if props["op"]["enum"] == ["set"]:
            (param,) = props["param"]["enum"]
            items = props["values"]["items"]
            assert (items["minimum"], items["maximum"]) == (PARAMETER_BOUNDS[param].min, PARAMETER_BOUNDS[param].max)
    assert "error_floor" not in EDITABLE_PARAMETERS
    assert not any(p.startswith("redshift.") for p in EDITABLE_PARAMETERS)


GOOD = [
    {"op": "enable", "module": "agn"},
    {"op": "disable", "module": "nebular"},
    {"op": "dust_law", "law": "smc"},
    {"op": "sfh", "family": "constant"},
    {"op": "set", "param": "dust_attenuation.av", "values": [0, 1.5, 4]},
    {"op": "widen", "param": "agn.frac_agn", "side": "up"},
    {"op": "narrow", "param": "sfh.age"},
    {"op": "shift", "param": "nebular.logu", "direction": "up"},
    {"op": "accept"},
    {"op": "give_up"},
]
BAD = [
    None, 3, "enable agn", [], {}, {"op": "enable"}, {"op": "enable", "module": "shell"},
    {"op": "exec", "cmd": "rm -rf /"}, {"op": "set", "param": "error_floor", "values": [0.5]},
    {"op": "set", "param": "dust_attenuation.av", "values": [11]},
    {"op": "set", "param": "dust_attenuation.av", "values": []},
    {"op": "set", "param": "dust_attenuation.av", "values": list(range(9))},
    {"op": "set", "param": "dust_attenuation.av", "values": ["1"]},
    {"op": "widen", "param": "sfh.age", "side": "sideways"},
    {"op": "accept", "extra": "x"}, {"op": "redshift_prior", "z_min": 0.1, "z_max": 2.0},
    {"op": "set", "param": "../../etc/passwd", "values": [1]},
]


@pytest.mark.parametrize("data", GOOD)
def test_good_actions_pass_both_validators(data) -> None:
    action = validate_action(data)
    assert action.op == data["op"]
    jsonschema.validate(data, action_json_schema())


@pytest.mark.parametrize("data", BAD)
def test_bad_actions_fail_both_validators(data) -> None:
    with pytest.raises(ActionError):
        validate_action(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, action_json_schema())


@pytest.mark.parametrize("text,code", [
    ("", "empty_reply"), (None, "empty_reply"), ("not json", "invalid_json"), ('{"op":"enable"', "invalid_json"),
    ('{"op":"run","code":"import os"}', "schema_violation"), ("x" * 5000, "reply_too_long"),
])
def test_parse_reasons(text, code) -> None:
    with pytest.raises(ActionError) as err:
        parse_action(text)
    assert err.value.code == code


def test_apply_every_action_kind_gives_a_valid_config_within_bounds() -> None:
    base = FitConfig()
    rng = np.random.default_rng(0)
    produced = 0
    for data in GOOD[:-2] + [{"op": "enable", "module": m} for m in ("burst",)] + [
        {"op": kind, "param": p, **extra}
        for p in EDITABLE_PARAMETERS
        for kind, extra in (("widen", {"side": "both"}), ("shift", {"direction": "up"}), ("narrow", {}))
    ]:
        for cfg in (base, base.model_copy(update={"agn": base.agn.model_copy(update={"enabled": True})})):
            try:
                new = apply_action(cfg, validate_action(data), estimates={"age": (2.0, 0.3)})
            except ActionError as err:
                assert err.code in {"no_change", "no_effect", "invalid_config", "grid_too_large", "too_many_values"}
                continue
            produced += 1
            FitConfig.model_validate(new.model_dump())  # round-trips through validation
            assert new.hash() != cfg.hash()
            assert new.error_floor == cfg.error_floor and new.redshift == cfg.redshift
            for key, bound in PARAMETER_BOUNDS.items():
                if key.startswith("redshift.") or key == "error_floor":
                    continue
                sec, fld = key.split(".")
                vals = getattr(getattr(new, sec), fld)
                assert all(bound.min <= v <= bound.max for v in vals), key
            assert describe_config(new)
    assert produced > 30
    del rng


def test_apply_rejects_no_change_and_terminal_and_photoz_only() -> None:
    base = FitConfig()
    for data, code in [({"op": "enable", "module": "nebular"}, "no_change"),
                       ({"op": "dust_law", "law": "calzetti"}, "no_change"),
                       ({"op": "set", "param": "agn.frac_agn", "values": [0.5]}, "no_effect"),
                       ({"op": "accept"}, "terminal_action")]:
        with pytest.raises(ActionError) as err:
            apply_action(base, validate_action(data))
        assert err.value.code == code
    with pytest.raises(ActionError) as err:
        apply_action(base, validate_action({"op": "redshift_prior", "z_min": 1, "z_max": 2}, photoz=True))
    assert err.value.code == "not_photoz"
    new = apply_action(base, validate_action({"op": "redshift_prior", "z_min": 1, "z_max": 2}, photoz=True), photoz=True)
    assert (new.redshift.z_min, new.redshift.z_max) == (1.0, 2.0)


def test_grid_size_is_capped() -> None:
    from sedscale.agent.apply import ApplyLimits

    big = FitConfig().model_copy(update={"agn": FitConfig().agn.model_copy(update={"enabled": True})})
    with pytest.raises(ActionError) as err:
        apply_action(big, validate_action({"op": "set", "param": "agn.av_agn", "values": list(range(8))}),
                     limits=ApplyLimits(max_models=20_000))
    assert err.value.code == "grid_too_large"


def test_combinations_of_valid_actions_stay_valid() -> None:
    cfg = FitConfig()
    for data in itertools.islice(itertools.cycle(GOOD[:-2]), 24):
        try:
            cfg = apply_action(cfg, validate_action(data))
        except ActionError:
            pass
    FitConfig.model_validate(cfg.model_dump())


def test_memoised_rejection_does_not_keep_the_callers_frames_alive() -> None:
    """The memo outlives partitions: a rejection must be kept as its code and detail, not as the
    caught exception, whose traceback pins the calling frames and all they hold (a worker kept
    a whole 100k-row partition's arrays alive this way, ~140 MB per new rejection)."""
    import gc
    import weakref

    class Payload:  # stands for a partition's arrays in a caller's frame
        pass

    base = FitConfig().model_copy(update={"redshift": FitConfig().redshift.model_copy(update={"node_step": 0.0137})})
    action = validate_action({"op": "enable", "module": "nebular"})

    def caller() -> tuple[weakref.ref, str]:
        payload = Payload()
        try:
            apply_action(base, action)
        except ActionError as exc:
            return weakref.ref(payload), exc.code
        raise AssertionError("expected a rejection")

    ref, code = caller()
    gc.collect()
    assert code == "no_change"
    assert ref() is None
    with pytest.raises(ActionError) as err:  # the memoised rejection is raised again, the same
        apply_action(base, action)
    assert err.value.code == "no_change" and "nebular is already on" in err.value.detail
