"""JSON on the wire: camelCase out, camelCase or snake_case in, the same for every model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """camelCase out, camelCase or snake_case in."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


def refuse_both_spellings(model: type[BaseModel], data: Any) -> Any:
    """A field given twice, as `task_type` and `taskType`, is refused: which one wins would
    otherwise depend on pydantic's internals, and the caller surely meant only one."""
    if isinstance(data, dict):
        for name, field in model.model_fields.items():
            alias = field.alias or name
            if alias != name and alias in data and name in data:
                raise ValueError(f"{alias} is given twice, also as {name}: send one of them")
    return data


class StrictModel(CamelModel):
    """Input that is taken as it is: unknown keys and look-alike types ("3" for 3, 1 for true)
    are refused, so a typo or a lenient coercion never silently changes what runs."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        return refuse_both_spellings(cls, data)


def _integral(value: object) -> object:
    """A JSON number with no fraction is an integer, however it is written (3, 3.0, 3e0): JSON
    Schema's `integer`, which the OpenAPI document promises. json.loads makes the latter two a
    float, which strict validation would refuse; "3" and true stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A JSON number with no fraction (before the bounds: after them, they would not be documented).
Integral = BeforeValidator(_integral)
