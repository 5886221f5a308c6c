"""What a stored setting declares: its input schema, its admin and public views, its secrets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, BeforeValidator

from service.wire import CamelModel, StrictModel

#: Text without control characters (they would forge log lines, and PostgreSQL cannot store NUL).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
CONFIGURED = "Configured"


def _integral(value: object) -> object:
    """3.0 is the integer 3, as JSON Schema's `integer` says (service.api.fields does the same
    for the API's own models; this layer cannot import it); "3" and true stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A JSON number with no fraction, for the strict models of settings.
Integral = BeforeValidator(_integral)


@dataclass(frozen=True, slots=True)
class SettingDefinition:
    """One settings key: a PUT body is `input_model` (strict, whole document); an admin reads
    `admin_model` (secrets replaced by `<name>Configured` flags); anyone reads `public_model`.

    Secret fields are write-only: a PUT that leaves one out keeps the stored value (an admin
    never sees it, so cannot send it back), `null` removes it, a string replaces it.
    """

    key: str
    description: str
    input_model: type[StrictModel]
    admin_model: type[CamelModel]
    public_model: type[CamelModel]
    #: names (as on the wire) of write-only fields, wherever they appear in the document
    secrets: frozenset[str]

    def defaults(self) -> dict[str, Any]:
        """The stored document before anyone saved one (version 0)."""
        return _dump(self.input_model())

    def parse(self, body: Any, current: dict[str, Any]) -> dict[str, Any]:
        """The document a PUT body makes (raises pydantic's ValidationError), secrets it left
        out taken from `current`."""
        model = self.input_model.model_validate(body)
        document = _dump(model)
        _keep_unsent_secrets(model, document, current, self.secrets)
        return document

    def admin_view(self, document: dict[str, Any]) -> dict[str, Any]:
        """The document without secret values: each secret is a `<name>Configured` flag."""
        shown = _flag_secrets(document, self.secrets)
        return _dump(self.admin_model.model_validate(shown))

    def public_view(self, document: dict[str, Any]) -> dict[str, Any]:
        """What anyone may read: the public model's fields only (never a secret)."""
        return _dump(self.public_model.model_validate(document))


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)


def _keep_unsent_secrets(
    model: BaseModel, document: dict[str, Any], current: Any, secrets: frozenset[str]
) -> None:
    current = current if isinstance(current, dict) else {}
    for name, field in type(model).model_fields.items():
        alias = field.alias or name
        value = getattr(model, name)
        if alias in secrets and name not in model.model_fields_set:
            document[alias] = current.get(alias)
        elif isinstance(value, BaseModel):
            _keep_unsent_secrets(value, document[alias], current.get(alias), secrets)
        elif isinstance(value, dict):
            before = current.get(alias) if isinstance(current.get(alias), dict) else {}
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    _keep_unsent_secrets(item, document[alias][key], before.get(key), secrets)


def _flag_secrets(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, list):
        return [_flag_secrets(v, secrets) for v in value]
    if not isinstance(value, dict):
        return value
    shown: dict[str, Any] = {}
    for key, item in value.items():
        if key in secrets:
            shown[key + CONFIGURED] = item is not None
        else:
            shown[key] = _flag_secrets(item, secrets)
    return shown
