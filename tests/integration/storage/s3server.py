"""A real S3-compatible server on loopback (scripts/s3.sh) and guarded, throwaway buckets.

The server comes from OPS_TEST_S3_ENDPOINT (scripts/test.sh starts one) or, when that is unset,
from scripts/s3.sh started here once per test run. Import the fixtures into a test module or
conftest to use them; the server is shared by the whole run whichever module asks first.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.config import Settings
from service.storage import s3
from tests.fixtures.database import ROOT, free_port

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-0123456789"
_SERVER = pytest.StashKey["S3Server"]()


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    kind: str  # "minio" or "moto"

    def settings(self, bucket: str) -> dict[str, Any]:
        """Settings overrides that point the service at `bucket` on this server."""
        return {
            "storage": "s3",
            "s3_endpoint_url": self.endpoint,
            "s3_bucket": guard(self.endpoint, bucket),
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "s3_addressing_style": "path",
            "s3_max_attempts": 2,
        }

    def client(self) -> Any:
        """A client for fixtures (it is not tied to a bucket; the name only passes the guard)."""
        return s3.build_client(Settings(environment="test", **self.settings("test-admin")))


def guard(endpoint: str, bucket: str) -> str:
    """Refuse anything but a loopback endpoint and a bucket named test-…: tests delete objects."""
    host = urlsplit(endpoint).hostname or ""
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise RuntimeError(f"refusing a non-loopback S3 endpoint in tests: {endpoint}")
    if not bucket.startswith("test-"):
        raise RuntimeError(f"refusing a bucket whose name does not start with 'test-': {bucket}")
    return bucket


def _start(config: pytest.Config) -> S3Server:
    endpoint = os.environ.get("OPS_TEST_S3_ENDPOINT")
    if endpoint:
        return S3Server(endpoint, os.environ.get("OPS_TEST_S3_KIND", "external"))
    port, workdir = free_port(), tempfile.mkdtemp(prefix="ops-s3-")
    env = {**os.environ, "S3_ACCESS_KEY": ACCESS_KEY, "S3_SECRET_KEY": SECRET_KEY}
    script = str(ROOT / "scripts" / "s3.sh")
    done = subprocess.run(
        [script, "start", str(port), workdir],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )

    def stop() -> None:
        subprocess.run([script, "stop", workdir], check=False)
        shutil.rmtree(workdir, ignore_errors=True)

    config.add_cleanup(stop)
    return S3Server(f"http://127.0.0.1:{port}", done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def s3_server(pytestconfig: pytest.Config) -> S3Server:
    """One loopback S3 server for the whole run."""
    if _SERVER not in pytestconfig.stash:
        pytestconfig.stash[_SERVER] = _start(pytestconfig)
    return pytestconfig.stash[_SERVER]


def empty_and_delete(client: Any, bucket: str) -> None:
    guard(client.meta.endpoint_url, bucket)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket for one test, emptied and removed afterwards."""
    bucket = guard(s3_server.endpoint, f"test-{uuid.uuid4().hex[:16]}")
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        empty_and_delete(client, bucket)
