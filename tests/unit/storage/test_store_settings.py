"""Storage settings: the store the composition root builds, and the production guards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.bootstrap import build_store
from service.config import Settings
from service.storage.local import LocalFileStore
from service.storage.s3 import S3FileStore

STRONG = "x" * 40
PRODUCTION: dict[str, Any] = {"environment": "production", "service_token": "t" * 32}


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


class TestLocal:
    def test_is_the_default_with_files_under_the_data_dir(self, tmp_path: Path) -> None:
        store = build_store(Settings(data_dir=tmp_path / "data"))
        assert isinstance(store, LocalFileStore)
        assert store.kind == "local"
        assert store.root == (tmp_path / "data" / "files").resolve()

    def test_files_dir_and_public_url_are_settings(self, tmp_path: Path) -> None:
        settings = Settings(files_dir=tmp_path / "f", files_public_url="https://ops.example.com/")
        store = build_store(settings)
        assert isinstance(store, LocalFileStore)
        assert store.root == (tmp_path / "f").resolve()
        url = store.presign_get("a.csv", expires=60, download_name="a.csv")
        assert url.startswith("https://ops.example.com/api/v1/operations/files/content/a.csv?")

    def test_the_dev_signing_key_is_derived_stable_and_per_service_token(self) -> None:
        assert Settings().signing_secret == Settings().signing_secret
        assert Settings().signing_secret != Settings(service_token="other").signing_secret
        assert Settings(files_signing_key=STRONG).signing_secret == STRONG.encode()

    def test_production_refuses_the_derived_or_a_short_signing_key(self) -> None:
        with pytest.raises(ValidationError, match="OPS_FILES_SIGNING_KEY"):
            Settings(**PRODUCTION)
        with pytest.raises(ValidationError, match="OPS_FILES_SIGNING_KEY"):
            Settings(**PRODUCTION, files_signing_key="short")
        assert Settings(**PRODUCTION, files_signing_key=STRONG).signing_secret == STRONG.encode()

    def test_the_signing_key_comes_from_the_environment_and_stays_secret(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OPS_FILES_SIGNING_KEY", STRONG)
        settings = Settings()
        assert settings.signing_secret == STRONG.encode()
        assert STRONG not in repr(settings)


class TestS3:
    def test_production_with_s3_needs_no_signing_key(self) -> None:
        assert Settings(**PRODUCTION, storage="s3").storage == "s3"

    def test_the_client_carries_endpoint_region_timeouts_and_retries(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in {
            "OPS_STORAGE": "s3",
            "OPS_S3_BUCKET": "orders-exports",
            "OPS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "OPS_S3_REGION": "eu-west-3",
            "OPS_S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "OPS_S3_SECRET_ACCESS_KEY": "not-a-real-secret",
            "OPS_S3_ADDRESSING_STYLE": "path",
            "OPS_S3_CONNECT_TIMEOUT_SECONDS": "2",
            "OPS_S3_READ_TIMEOUT_SECONDS": "7",
            "OPS_S3_MAX_ATTEMPTS": "4",
        }.items():
            monkeypatch.setenv(name, value)
        store = build_store(Settings())
        assert isinstance(store, S3FileStore)
        assert (store.kind, store.bucket) == ("s3", "orders-exports")
        client: Any = store.client  # reads botocore's private parts to see what it was given
        assert client.meta.endpoint_url == "http://127.0.0.1:9000"
        assert client.meta.region_name == "eu-west-3"
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (2, 7)
        assert config.retries == {"total_max_attempts": 4, "mode": "standard"}
        assert config.s3 == {"addressing_style": "path"}
        credentials = client._request_signer._credentials  # the injected keys, not the env chain
        assert (credentials.access_key, credentials.secret_key) == (
            "AKIDEXAMPLE",
            "not-a-real-secret",
        )
        assert "not-a-real-secret" not in repr(Settings())

    def test_presigned_urls_need_no_server(self) -> None:
        settings = Settings(
            storage="s3",
            s3_bucket="b",
            s3_endpoint_url="http://127.0.0.1:9",
            s3_access_key_id="k",
            s3_secret_access_key="s",
            s3_addressing_style="path",
        )
        store = build_store(settings)
        url = store.presign_get("a/b c.csv", expires=60, download_name="b c.csv")
        assert url.startswith("http://127.0.0.1:9/b/a/b%20c.csv?")
        assert "X-Amz-Expires=60" in url
        assert "response-content-disposition=attachment" in url
