"""What a policy may ask for: a small, closed set of edits to a :class:`FitConfig`.

One action is one JSON object with an ``op`` and at most three more keys. The same vocabulary is
expressed twice, on purpose:

* :data:`Action` — pydantic models (a union discriminated by ``op``) that validate a reply;
* :func:`action_json_schema` — a hand-built JSON schema, handed to the server as the structured
  output grammar, in which *every* string is an enum and *every* number has a minimum and a
  maximum taken from :data:`sedscale.sed.config.PARAMETER_BOUNDS`. An unbounded string or number
  lets a weak model write until ``max_tokens`` runs out; a bounded one ends.

A reply is validated by both (``jsonschema`` then pydantic, :func:`parse_action`); a test checks
that the two agree. No action names a file, a command or code: the worst a reply can do is pick
a legal edit that does not help, and :mod:`sedscale.agent.apply` still checks the result.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from sedscale.sed.config import PARAMETER_BOUNDS, DustLawName, SFHFamilyName

#: Grid parameters an action may edit (``section.field`` of :data:`PARAMETER_BOUNDS`). The
#: redshift grid has its own action (photo-z mode only); ``error_floor`` is not editable — inflating
#: the errors would "fix" every fit and explain nothing.
EDITABLE_PARAMETERS: tuple[str, ...] = tuple(
    k for k in PARAMETER_BOUNDS if not k.startswith("redshift.") and k != "error_floor"
)
Module = Literal["nebular", "agn", "dust_emission", "burst"]
MODULES: tuple[Module, ...] = get_args(Module)
DUST_LAWS: tuple[DustLawName, ...] = get_args(DustLawName)
SFH_FAMILIES: tuple[SFHFamilyName, ...] = get_args(SFHFamilyName)
MAX_VALUES = 8  # longest value list one ``set`` may give

if TYPE_CHECKING:
    Param = str  # statically any name: the set below is built at import from PARAMETER_BOUNDS
else:
    Param = Literal[EDITABLE_PARAMETERS]  # pydantic (and so the JSON schema) sees the enum


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def key(self) -> str:
        """Canonical short name of the edit, without its numbers (knowledge-base key)."""
        raise NotImplementedError

    def brief(self) -> str:
        """Compact human/LLM-readable form, used in histories."""
        return self.key()


class Enable(_Op):
    op: Literal["enable"]
    module: Module

    def key(self) -> str:
        return f"enable:{self.module}"


class Disable(_Op):
    op: Literal["disable"]
    module: Module

    def key(self) -> str:
        return f"disable:{self.module}"


class DustLaw(_Op):
    op: Literal["dust_law"]
    law: DustLawName

    def key(self) -> str:
        return f"dust_law:{self.law}"


class SFHFamily(_Op):
    op: Literal["sfh"]
    family: SFHFamilyName

    def key(self) -> str:
        return f"sfh:{self.family}"


class SetValues(_Op):
    op: Literal["set"]
    param: Param
    values: list[float] = Field(min_length=1, max_length=MAX_VALUES)

    @field_validator("values")
    @classmethod
    def _in_bounds(cls, values: list[float], info: Any) -> list[float]:
        param = info.data.get("param")
        if param is None:
            return values
        b = PARAMETER_BOUNDS[param]
        bad = [v for v in values if not (b.min <= v <= b.max)]
        if bad:
            raise ValueError(f"{param}: {bad} outside [{b.min}, {b.max}]")
        return sorted({float(v) for v in values})

    def key(self) -> str:
        return f"set:{self.param}"

    def brief(self) -> str:
        return f"set:{self.param.split('.')[-1]}=" + ",".join(f"{v:g}" for v in self.values)


class Widen(_Op):
    op: Literal["widen"]
    param: Param
    side: Literal["up", "down", "both"]

    def key(self) -> str:
        return f"widen:{self.param}:{self.side}"


class Narrow(_Op):
    op: Literal["narrow"]
    param: Param

    def key(self) -> str:
        return f"narrow:{self.param}"


class Shift(_Op):
    op: Literal["shift"]
    param: Param
    direction: Literal["up", "down"]

    def key(self) -> str:
        return f"shift:{self.param}:{self.direction}"


class RedshiftPrior(_Op):
    op: Literal["redshift_prior"]
    z_min: float = Field(ge=PARAMETER_BOUNDS["redshift.z_min"].min, le=PARAMETER_BOUNDS["redshift.z_min"].max)
    z_max: float = Field(ge=PARAMETER_BOUNDS["redshift.z_max"].min, le=PARAMETER_BOUNDS["redshift.z_max"].max)

    def key(self) -> str:
        return "redshift_prior"

    def brief(self) -> str:
        return f"redshift_prior:{self.z_min:g}-{self.z_max:g}"


class Accept(_Op):
    op: Literal["accept"]

    def key(self) -> str:
        return "accept"


class GiveUp(_Op):
    op: Literal["give_up"]

    def key(self) -> str:
        return "give_up"


Action = Annotated[
    Union[Enable, Disable, DustLaw, SFHFamily, SetValues, Widen, Narrow, Shift, RedshiftPrior, Accept, GiveUp],
    Field(discriminator="op"),
]
_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)

#: Actions that end a source's search rather than change its configuration.
TERMINAL_OPS = frozenset({"accept", "give_up"})


class ActionError(ValueError):
    """A reply is not a valid action; ``code`` is the short reason recorded in the accounting."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# ------------------------------------------------------------------------------------------------
# the JSON schema (structured output)
# ------------------------------------------------------------------------------------------------


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


@lru_cache(maxsize=4)
def _schema_text(photoz: bool) -> str:
    params = _enum(*EDITABLE_PARAMETERS)
    variants: list[dict[str, Any]] = [
        _obj({"op": _enum("enable"), "module": _enum(*MODULES)}),
        _obj({"op": _enum("disable"), "module": _enum(*MODULES)}),
        _obj({"op": _enum("dust_law"), "law": _enum(*DUST_LAWS)}),
        _obj({"op": _enum("sfh"), "family": _enum(*SFH_FAMILIES)}),
        _obj({"op": _enum("widen"), "param": params, "side": _enum("up", "down", "both")}),
        _obj({"op": _enum("narrow"), "param": params}),
        _obj({"op": _enum("shift"), "param": params, "direction": _enum("up", "down")}),
    ]
    for name in EDITABLE_PARAMETERS:  # one variant per parameter so each gets its own bounds
        b = PARAMETER_BOUNDS[name]
        values = {"type": "array", "minItems": 1, "maxItems": MAX_VALUES,
                  "items": {"type": "number", "minimum": b.min, "maximum": b.max}}
        variants.append(_obj({"op": _enum("set"), "param": _enum(name), "values": values}))
    if photoz:
        zlo, zhi = PARAMETER_BOUNDS["redshift.z_min"], PARAMETER_BOUNDS["redshift.z_max"]
        variants.append(_obj({"op": _enum("redshift_prior"),
                              "z_min": {"type": "number", "minimum": zlo.min, "maximum": zlo.max},
                              "z_max": {"type": "number", "minimum": zhi.min, "maximum": zhi.max}}))
    variants += [_obj({"op": _enum("accept")}), _obj({"op": _enum("give_up")})]
    return json.dumps({"anyOf": variants}, sort_keys=True)


def action_json_schema(photoz: bool = False) -> dict[str, Any]:
    """The bounded JSON schema of one action (a fresh copy). ``redshift_prior`` only in photo-z mode."""
    schema: dict[str, Any] = json.loads(_schema_text(photoz))
    return schema


@lru_cache(maxsize=4)
def _validator(photoz: bool) -> Any:
    import jsonschema

    schema = action_json_schema(photoz)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def parse_action(text: str | bytes | None, *, photoz: bool = False, max_chars: int = 2000) -> Action:
    """A reply's text as a validated :data:`Action`, or :class:`ActionError` saying why not.

    Checks, in order: present, short enough, JSON, an object matching the schema
    (``jsonschema``), and the pydantic model (bounds, types, duplicates removed).
    """
    if text is None or (isinstance(text, (str, bytes)) and not text.strip()):
        raise ActionError("empty_reply", "the reply has no content")
    if len(text) > max_chars:
        raise ActionError("reply_too_long", f"{len(text)} characters (limit {max_chars})")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ActionError("invalid_json", str(exc)[:120]) from None
    return validate_action(data, photoz=photoz)


def validate_action(data: Any, *, photoz: bool = False) -> Action:
    """A decoded reply (any JSON value) as a validated :data:`Action`."""
    errors = sorted(_validator(photoz).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        raise ActionError("schema_violation", _short(errors[0].message))
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ActionError("invalid_action", _short(f"{'.'.join(map(str, first['loc']))}: {first['msg']}")) from None


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
