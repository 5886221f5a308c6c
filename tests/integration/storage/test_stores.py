"""The FileStore contract, on the local store and on a real S3-compatible server."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from service.bootstrap import build_store
from service.clock import utcnow
from service.config import Settings
from service.domain.errors import InvalidInput
from service.storage.base import (
    FileStore,
    FileTooLarge,
    ObjectNotFound,
    Stored,
    digest,
    write_stream,
)
from service.storage.local import LocalFileStore
from service.storage.s3 import S3FileStore
from service.storage.signing import UrlSigner
from tests.fixtures.s3 import S3Server, guard

MIB = 1024 * 1024
CHUNK = 64 * 1024


def chunks(total: int, seed: bytes = b"ops") -> Iterator[bytes]:
    """Deterministic, incompressible bytes, one 64 KiB chunk at a time."""
    block = hashlib.sha256(seed).digest() * (CHUNK // 32)
    for i in range(0, total, CHUNK):
        yield hashlib.sha256(block[:64] + i.to_bytes(8, "big")).digest() * (CHUNK // 32)


def write(store: FileStore, key: str, data: bytes, content_type: str = "text/plain") -> None:
    with store.open_write(key, content_type) as stream:
        stream.write(data)


def read(store: FileStore, key: str) -> bytes:
    with store.open_read(key) as stream:
        return stream.read()


class TestRoundTrip:
    async def test_a_multi_megabyte_file_streams_both_ways_in_constant_memory(
        self, store: FileStore
    ) -> None:
        size = 24 * MIB
        expected = hashlib.sha256()
        tracemalloc.start()
        try:
            with store.open_write("exports/big.csv", "text/csv") as stream:
                for chunk in chunks(size):
                    expected.update(chunk)
                    stream.write(chunk)
            _, write_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            actual, seen = hashlib.sha256(), 0
            with store.open_read("exports/big.csv") as stream:
                while chunk := stream.read(CHUNK):
                    actual.update(chunk)
                    seen += len(chunk)
            _, read_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (seen, actual.hexdigest()) == (size, expected.hexdigest())
        assert store.size("exports/big.csv") == size
        # Constant memory: a few buffers (S3: ~1 MiB per upload thread), never the 24 MiB file.
        assert write_peak < 8 * MIB, write_peak
        assert read_peak < 8 * MIB, read_peak

    async def test_exists_size_and_delete(self, store: FileStore) -> None:
        assert not store.exists("a/b.txt")
        write(store, "a/b.txt", b"hello")
        assert store.exists("a/b.txt")
        assert store.size("a/b.txt") == 5
        assert read(store, "a/b.txt") == b"hello"
        store.delete("a/b.txt")
        store.delete("a/b.txt")  # deleting a missing file is fine
        assert not store.exists("a/b.txt")

    async def test_a_missing_file_is_object_not_found(self, store: FileStore) -> None:
        with pytest.raises(ObjectNotFound):
            store.size("nothing/here.csv")
        with pytest.raises(ObjectNotFound), store.open_read("nothing/here.csv"):
            pass

    async def test_a_failed_write_stores_nothing_and_keeps_the_old_file(
        self, store: FileStore
    ) -> None:
        def crash(key: str) -> None:
            with store.open_write(key, "text/csv") as stream:
                stream.write(b"half of the new file")
                raise RuntimeError("the export crashed")

        write(store, "report.csv", b"old")
        with pytest.raises(RuntimeError):
            crash("report.csv")
        with pytest.raises(RuntimeError):
            crash("fresh.csv")
        assert read(store, "report.csv") == b"old"
        assert not store.exists("fresh.csv")

    async def test_concurrent_writers_from_threads_never_mix_their_bytes(
        self, store: FileStore
    ) -> None:
        bodies = {n: bytes([65 + n]) * (256 * 1024 + n) for n in range(6)}

        def put(n: int) -> None:
            write(store, "shared.bin", bodies[n])
            write(store, f"own/{n}.bin", bodies[n])

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(put, bodies))
        assert read(store, "shared.bin") in bodies.values()
        for n, body in bodies.items():
            assert read(store, f"own/{n}.bin") == body

    async def test_a_reader_is_a_real_binary_stream_for_text_and_csv(
        self, store: FileStore
    ) -> None:
        write(store, "in/products.csv", "sku,name\nA-1,Thé vert\nB-2,Café\n".encode())
        with (
            store.open_read("in/products.csv") as stream,
            io.TextIOWrapper(stream, encoding="utf-8", newline="") as text,
        ):
            rows = list(csv.DictReader(text))
        assert rows == [{"sku": "A-1", "name": "Thé vert"}, {"sku": "B-2", "name": "Café"}]


def _exactly(total: int) -> list[bytes]:
    """`chunks(total)`, the last one cut so that there are exactly `total` bytes."""
    parts = list(chunks(total))
    parts[-1] = parts[-1][: total - CHUNK * (len(parts) - 1)]
    return parts


async def _stream(total: int) -> AsyncIterator[bytes]:
    for chunk in _exactly(total):
        yield chunk


class TestHashing:
    async def test_write_stream_and_digest_give_the_sha256_of_the_stored_bytes(
        self, store: FileStore
    ) -> None:
        size = 3 * MIB + 123  # several write batches and a short last chunk
        expected = hashlib.sha256(b"".join(_exactly(size))).hexdigest()
        stored = await write_stream(store, "in/data.bin", "text/csv", _stream(size), limit=size)
        assert (stored.size, stored.sha256) == (size, expected)
        assert digest(store, "in/data.bin") == stored  # read back: the same bytes
        assert hashlib.sha256(read(store, "in/data.bin")).hexdigest() == expected

    async def test_write_stream_past_the_limit_stores_nothing(self, store: FileStore) -> None:
        with pytest.raises(FileTooLarge, match=f"files are limited to {MIB} bytes"):
            await write_stream(store, "in/big.bin", "text/csv", _stream(2 * MIB), limit=MIB)
        assert not store.exists("in/big.bin")
        with pytest.raises(ObjectNotFound):
            digest(store, "in/big.bin")


class TestPublishing:
    """write_stream's `accept`: the bytes are published inside it, or not at all."""

    async def test_bytes_appear_only_inside_the_acceptance_and_only_if_it_is_entered(
        self, store: FileStore
    ) -> None:
        seen: list[tuple[str, bool]] = []

        @contextlib.asynccontextmanager
        async def accept(stored: Stored) -> AsyncIterator[None]:
            seen.append(("before", store.exists("in/a.csv")))
            yield
            seen.append(("after", store.exists("in/a.csv")))

        stored = await write_stream(store, "in/a.csv", "text/csv", _stream(10), limit=10)
        assert stored.size == 10
        await write_stream(store, "in/a.csv", "text/csv", _stream(20), limit=20, accept=accept)
        assert seen == [("before", True), ("after", True)]
        assert store.size("in/a.csv") == 20

        @contextlib.asynccontextmanager
        async def refuse(stored: Stored) -> AsyncIterator[None]:
            raise InvalidInput(f"not these {stored.size} bytes")
            yield

        with pytest.raises(InvalidInput, match="not these 30 bytes"):
            await write_stream(store, "in/a.csv", "text/csv", _stream(30), limit=30, accept=refuse)
        with pytest.raises(InvalidInput):
            await write_stream(store, "in/b.csv", "text/csv", _stream(30), limit=30, accept=refuse)
        assert store.size("in/a.csv") == 20  # the accepted bytes stay
        assert not store.exists("in/b.csv")


class TestSweep:
    """What a writer killed mid-write leaves behind is removed once stale, never a live write."""

    async def test_the_local_store_removes_stale_temporary_files_only(self, tmp_path: Path) -> None:
        store = LocalFileStore(tmp_path / "files", UrlSigner(b"k" * 32))
        write(store, "tasks/t/.hidden.csv", b"a real file whose name starts with a dot")
        stale, fresh = (store.path(f"tasks/{n}/.export.csv.abcd_123.part") for n in "ab")
        for path in (stale, fresh):
            path.parent.mkdir(parents=True)
            path.write_bytes(b"half an export")
        hour_ago = time.time() - 3600
        os.utime(stale, (hour_ago, hour_ago))
        os.utime(store.path("tasks/t/.hidden.csv"), (hour_ago, hour_ago))
        with store.open_write("tasks/c/live.csv", "text/csv") as live:
            live.write(b"id\n")
            assert store.sweep(before=utcnow() - timedelta(minutes=30)) == 1
        assert (stale.exists(), fresh.exists()) == (False, True)
        assert read(store, "tasks/c/live.csv") == b"id\n"
        assert store.exists("tasks/t/.hidden.csv")
        assert store.sweep(before=utcnow() - timedelta(minutes=30)) == 0

    async def test_the_s3_store_aborts_stale_multipart_uploads_and_spool_files(
        self, s3_store: S3FileStore, tmp_path: Path
    ) -> None:
        store = S3FileStore(s3_store.bucket, s3_store.client, spool_dir=tmp_path)
        client, bucket = store.client, store.bucket
        started = client.create_multipart_upload(Bucket=bucket, Key="exports/big.csv")
        client.upload_part(
            Bucket=bucket,
            Key="exports/big.csv",
            UploadId=started["UploadId"],
            PartNumber=1,
            Body=b"x" * 1024,
        )
        spool = tmp_path / "ops-s3-abcd_123.part"
        spool.write_bytes(b"half")
        (tmp_path / "other.part").write_bytes(b"not ours")

        assert store.sweep(before=utcnow() - timedelta(hours=1)) == 0  # all of it is fresh
        assert _uploads(store) == [started["UploadId"]]
        hour_ago = time.time() - 3600
        os.utime(spool, (hour_ago, hour_ago))
        assert store.sweep(before=utcnow() + timedelta(minutes=1)) == 2
        assert _uploads(store) == []
        assert sorted(p.name for p in tmp_path.iterdir()) == ["other.part"]


def _uploads(store: S3FileStore) -> list[str]:
    listed = store.client.list_multipart_uploads(Bucket=store.bucket)
    return [u["UploadId"] for u in listed.get("Uploads", [])]


class TestKeys:
    BAD: ClassVar[list[str]] = [
        "",
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/passwd",
        "a//b.txt",
        "a/./b.txt",
        "a/b/",
        "nul\x00.txt",
        "back\\slash.txt",
        "line\nbreak.txt",
        "x" * 1025,
    ]

    @pytest.mark.parametrize("key", BAD)
    async def test_unsafe_keys_are_refused_by_every_operation(
        self, store: FileStore, key: str
    ) -> None:
        operations: list[Callable[[], object]] = [
            lambda: store.open_write(key, "text/plain").__enter__(),
            lambda: store.open_read(key).__enter__(),
            lambda: store.size(key),
            lambda: store.exists(key),
            lambda: store.delete(key),
            lambda: store.presign_put(key, expires=60, content_type="text/plain"),
            lambda: store.presign_get(key, expires=60, download_name="x.txt"),
        ]
        for operation in operations:
            with pytest.raises(InvalidInput):
                operation()

    async def test_keys_may_hold_unicode_and_spaces(self, store: FileStore) -> None:
        write(store, "exports/été 2024/prix & remises.csv", b"ok")
        assert read(store, "exports/été 2024/prix & remises.csv") == b"ok"


class TestLocalRoot:
    async def test_a_symlink_cannot_lead_out_of_the_root(self, tmp_path: Path) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("secret")
        store = LocalFileStore(tmp_path / "root", UrlSigner(b"k" * 32))
        store.root.mkdir()
        os.symlink(outside, store.root / "link")
        with pytest.raises(InvalidInput):
            read(store, "link/secret.txt")
        with pytest.raises(InvalidInput):
            write(store, "link/planted.txt", b"x")
        assert not (outside / "planted.txt").exists()


@pytest.fixture
def s3_store(s3_server: S3Server, s3_bucket: str) -> S3FileStore:
    store = build_store(Settings(environment="test", **s3_server.settings(s3_bucket)))
    assert isinstance(store, S3FileStore)
    return store


class TestS3PresignedUrls:
    """The local store's URLs are served by the API: see tests/integration/api/test_files_api.py."""

    async def test_put_then_get_through_the_urls(self, s3_store: S3FileStore) -> None:
        body = b"".join(chunks(3 * MIB))
        put_url = s3_store.presign_put("up/data.csv", expires=60, content_type="text/csv")
        get_url = s3_store.presign_get("up/data.csv", expires=60, download_name="données.csv")
        async with httpx.AsyncClient(timeout=30) as client:
            put = await client.put(put_url, content=body, headers=s3_store.put_headers("text/csv"))
            assert put.status_code == 200, put.text
            got = await client.get(get_url)
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["content-disposition"].startswith("attachment;")
        assert "filename*=UTF-8''donn%C3%A9es.csv" in got.headers["content-disposition"]

    @pytest.fixture
    def _checks_signatures(self, s3_server: S3Server) -> None:
        if s3_server.kind == "moto":  # only when MinIO could not be built (see scripts/s3.sh)
            pytest.skip("moto's server checks neither signatures nor expiry; MinIO does")

    @pytest.mark.usefixtures("_checks_signatures")
    async def test_a_tampered_url_is_refused(self, s3_store: S3FileStore) -> None:
        write(s3_store, "private/report.csv", b"secret")
        write(s3_store, "private/other.csv", b"other secret")
        url = s3_store.presign_get("private/report.csv", expires=60, download_name="r.csv")
        signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(url)).status_code == 200
            for tampered in (
                url.replace("private/report.csv", "private/other.csv"),
                url.replace(signature, "0" * len(signature)),
                url.replace("r.csv", "page.html"),
            ):
                assert (await client.get(tampered)).status_code == 403, tampered

    @pytest.mark.usefixtures("_checks_signatures")
    async def test_a_put_with_another_content_type_is_refused(self, s3_store: S3FileStore) -> None:
        """The signature covers the Content-Type: the local store's 415 mirrors this."""
        url = s3_store.presign_put("up/data.csv", expires=60, content_type="text/csv")
        signed = s3_store.put_headers("text/csv")
        other = signed | {"Content-Type": "application/x-www-form-urlencoded"}  # curl's default
        async with httpx.AsyncClient(timeout=30) as client:
            put = await client.put(url, content=b"a,b\n", headers=other)
            assert put.status_code == 403, put.text
            only_create = {"If-None-Match": "*"}  # no type: a signed header is missing
            put = await client.put(url, content=b"a,b\n", headers=only_create)
            assert put.status_code in (400, 403), put.text
        assert not s3_store.exists("up/data.csv")

    @pytest.mark.usefixtures("_checks_signatures")
    async def test_an_expired_url_is_refused(self, s3_store: S3FileStore) -> None:
        write(s3_store, "private/report.csv", b"secret")
        url = s3_store.presign_get("private/report.csv", expires=1, download_name="r.csv")
        await asyncio.sleep(2.1)  # S3 dates have whole seconds
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(url)).status_code == 403


class TestFixtureGuards:
    @pytest.mark.parametrize(
        ("endpoint", "bucket"),
        [
            ("http://s3.amazonaws.com", "test-x"),
            ("http://10.0.0.5:9000", "test-x"),
            ("http://minio.internal:9000", "test-x"),
            ("http://127.0.0.1:9000", "orders-exports"),
        ],
    )
    def test_refuse_remote_endpoints_and_non_test_buckets(self, endpoint: str, bucket: str) -> None:
        with pytest.raises(RuntimeError, match="refusing"):
            guard(endpoint, bucket)

    def test_accept_loopback_test_buckets(self) -> None:
        for endpoint in ("http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"):
            assert guard(endpoint, "test-x") == "test-x"
