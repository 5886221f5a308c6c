"""Each store test runs on the local store and on a real S3-compatible server."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.bootstrap import build_store
from service.config import Settings
from service.storage.base import FileStore
from tests.fixtures.s3 import S3Server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    """A store built by the composition root, as the apps build it."""
    overrides = {}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        overrides = server.settings(request.getfixturevalue("s3_bucket"))
    return build_store(Settings(environment="test", data_dir=tmp_path, **overrides))
