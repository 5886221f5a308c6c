"""Bulk tests run on the local store; a test or class opts into S3 as well with

    @pytest.mark.parametrize("storage", ["local", "s3"], indirect=True)

S3 means a real S3-compatible server on loopback (tests/fixtures/s3.py) and a throwaway bucket.
A module changes other settings by overriding `settings_overrides`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from tests.fixtures.app import make_settings
from tests.fixtures.s3 import s3_bucket, s3_server, store_overrides

__all__ = ["s3_bucket", "s3_server"]


@pytest.fixture
def storage(request: pytest.FixtureRequest) -> str:
    """The file store of the test's app: "local" unless parametrized (indirectly) with "s3"."""
    return str(getattr(request, "param", "local"))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(
    database_url: str,
    tmp_path: Path,
    storage: str,
    settings_overrides: dict[str, Any],
    request: pytest.FixtureRequest,
) -> Settings:
    overrides = settings_overrides | store_overrides(request, storage)
    return make_settings(database_url, tmp_path, **overrides)
