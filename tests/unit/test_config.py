"""Settings: defaults, URL rewriting and the production guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import DEV_TOKEN, Settings


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the default data dir is relative to the working directory


class TestDefaults:
    def test_embedded_defaults_use_sqlite_under_the_data_dir(self, tmp_path: Path) -> None:
        settings = Settings()
        expected = (tmp_path / ".data").resolve() / "operations.db"
        assert settings.database_url == f"sqlite+aiosqlite:///{expected}"
        assert settings.is_sqlite
        assert settings.migrate_on_start is True
        assert settings.environment == "dev"
        assert settings.publisher == "inprocess"
        assert settings.default_max_retries == 3

    def test_the_data_dir_setting_moves_the_database(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("OPS_DATA_DIR", str(tmp_path / "elsewhere"))
        settings = Settings()
        expected = (tmp_path / "elsewhere").resolve() / "operations.db"
        assert settings.database_url == f"sqlite+aiosqlite:///{expected}"

    def test_the_blank_input_ratio_of_imports(self, monkeypatch: pytest.MonkeyPatch) -> None:
        assert Settings().import_max_blank_ratio == 100
        monkeypatch.setenv("OPS_IMPORT_MAX_BLANK_RATIO", "500")
        assert Settings().import_max_blank_ratio == 500
        monkeypatch.setenv("OPS_IMPORT_MAX_BLANK_RATIO", "0")
        with pytest.raises(ValidationError, match="import_max_blank_ratio"):
            Settings()

    def test_heartbeat_defaults_to_a_third_of_the_lease(self) -> None:
        assert Settings(lease_seconds=45).heartbeat_seconds == 15
        assert Settings(lease_seconds=45, heartbeat_seconds=5).heartbeat_seconds == 5

    def test_partial_overrides_keep_the_other_defaults(self) -> None:
        settings = Settings(worker_concurrency={"bulk": 7}, cron={"outbox-sweep": "* * * * *"})
        assert settings.worker_concurrency == {"bulk": 7, "urgent": 4, "default": 16}
        assert settings.cron["outbox-sweep"] == "* * * * *"
        assert settings.cron["process-scheduled"] == "* * * * * *"

    def test_a_worker_id_is_always_set(self) -> None:
        assert Settings().worker_id
        assert Settings(worker_id="w-1").worker_id == "w-1"


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("postgres://u:p@db:5432/ops", "postgresql+asyncpg://u:p@db:5432/ops"),
            ("postgresql://u:p@db/ops", "postgresql+asyncpg://u:p@db/ops"),
            ("postgresql+asyncpg://u@db/ops", "postgresql+asyncpg://u@db/ops"),
            ("sqlite:////var/ops/ops.db", "sqlite+aiosqlite:////var/ops/ops.db"),
            ("sqlite+aiosqlite:///ops.db", "sqlite+aiosqlite:///ops.db"),
        ],
    )
    def test_urls_get_the_async_driver(self, given: str, expected: str) -> None:
        assert Settings(database_url=given).database_url == expected

    def test_the_environment_variable_is_rewritten_too(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OPS_DATABASE_URL", "postgres://ops@10.0.0.5/ops")
        settings = Settings()
        assert settings.database_url == "postgresql+asyncpg://ops@10.0.0.5/ops"
        assert not settings.is_sqlite
        assert settings.migrate_on_start is False  # PostgreSQL is migrated by a job, not on start


class TestServiceToken:
    def test_production_refuses_the_dev_token(self) -> None:
        with pytest.raises(ValidationError, match="OPS_SERVICE_TOKEN must be set"):
            Settings(environment="production")

    def test_production_refuses_the_dev_token_given_explicitly(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OPS_ENVIRONMENT", "production")
        monkeypatch.setenv("OPS_SERVICE_TOKEN", DEV_TOKEN)
        with pytest.raises(ValidationError, match="OPS_SERVICE_TOKEN must be set"):
            Settings()

    def test_production_refuses_a_short_token(self) -> None:
        with pytest.raises(ValidationError, match="OPS_SERVICE_TOKEN must be set"):
            Settings(environment="production", service_token="short", files_signing_key="k" * 40)

    def test_production_accepts_a_real_token(self) -> None:
        settings = Settings(
            environment="production",
            service_token="s3cr3t-from-a-secret",
            files_signing_key="k" * 40,  # production also needs a real file-URL signing key
        )
        assert settings.service_token == "s3cr3t-from-a-secret"

    @pytest.mark.parametrize("environment", ["dev", "test"])
    def test_dev_and_test_may_use_the_dev_token(self, environment: str) -> None:
        assert Settings(environment=environment).service_token == DEV_TOKEN

    def test_an_unknown_environment_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            Settings(environment="staging")


def test_the_blank_ratio_default_is_the_readers_own() -> None:
    """The setting's default and the bulk readers' default are one number."""
    from service.bulk.limits import DEFAULT_LIMITS

    assert Settings(environment="test").import_max_blank_ratio == DEFAULT_LIMITS.max_blank_ratio
