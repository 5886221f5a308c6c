"""The rules of using a template: merge, required and settable params, the narrowed schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.domain import templates, transitions
from service.domain.tasks import TaskStatus as S
from service.domain.templates import TemplateContent

SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
    "required": ["c"],
}


class TestMerging:
    def test_given_params_win_over_defaults(self) -> None:
        assert templates.merged_params({"a": 1, "b": "x"}, {"a": 2}) == {"a": 2, "b": "x"}

    def test_missing_fields_in_the_templates_order(self) -> None:
        assert templates.missing_fields(["b", "a", "c"], {"a": 1, "c": None}) == ["b", "c"]

    def test_settable_fields(self) -> None:
        open_ = TemplateContent(name="n", task_type="t")
        assert templates.unsettable_fields(open_, {"z": 1}) == []
        named = TemplateContent(
            name="n", task_type="t", required_fields=("a",), optional_fields=("b",)
        )
        assert templates.unsettable_fields(named, {"a": 1, "b": 2, "c": 3}) == ["c"]


class TestNarrowedSchema:
    def test_required_marked_defaults_shown_and_only_named_fields(self) -> None:
        content = TemplateContent(
            name="n",
            task_type="t",
            params={"c": True},
            required_fields=("a",),
            optional_fields=("c",),
        )
        schema = templates.narrowed_schema(SCHEMA, content)
        assert set(schema["properties"]) == {"a", "c"}
        assert schema["properties"]["c"]["default"] is True
        assert schema["required"] == ["a"]  # c has a default now
        assert schema["additionalProperties"] is False
        assert SCHEMA["required"] == ["c"]  # the type's schema is left alone

    def test_without_named_fields_every_param_stays(self) -> None:
        schema = templates.narrowed_schema(SCHEMA, TemplateContent(name="n", task_type="t"))
        assert set(schema["properties"]) == {"a", "b", "c"}
        assert schema["required"] == ["c"]
        assert "additionalProperties" not in schema


class TestAfterEdit:
    NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def test_a_future_time_schedules_and_a_past_one_makes_pending(self) -> None:
        later, earlier = self.NOW + timedelta(hours=1), self.NOW - timedelta(hours=1)
        for status in (S.PENDING, S.SCHEDULED):
            assert transitions.after_edit(status, run_at=later, now=self.NOW) is S.SCHEDULED
            assert transitions.after_edit(status, run_at=earlier, now=self.NOW) is S.PENDING
            assert transitions.after_edit(status, run_at=None, now=self.NOW) is S.PENDING

    def test_a_waiting_task_keeps_waiting(self) -> None:
        later = self.NOW + timedelta(hours=1)
        assert transitions.after_edit(S.WAITING, run_at=later, now=self.NOW) is S.WAITING
