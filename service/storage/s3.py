"""S3FileStore: S3 or MinIO through an injected boto3 client, with presigned URLs."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from service.config import Settings
from service.storage.base import ObjectNotFound, attachment, check_key, download_type

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
#: Files above this size are uploaded in parts of this size, a few at a time.
PART_BYTES = 8 * MIB
TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=4
)
#: Bytes a reader pulls from the response body at a time.
READ_BUFFER = MIB
MISSING = {"404", "NoSuchKey", "NotFound"}
#: A writer's local spool file (see open_write): NamedTemporaryFile's "ops-s3-<8 random>.part".
SPOOL = re.compile(r"ops-s3-[a-z0-9_]{8}\.part")
_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    """One session per process: building one loads the service models (~0.4 s)."""
    return boto3.session.Session()


def build_client(settings: Settings) -> S3Client:
    """A client with the endpoint, credentials, timeouts and retries of the OPS_S3_* settings."""
    config = Config(
        region_name=settings.s3_region,
        signature_version="s3v4",
        connect_timeout=settings.s3_connect_timeout_seconds,
        read_timeout=settings.s3_read_timeout_seconds,
        retries={"total_max_attempts": settings.s3_max_attempts, "mode": "standard"},
        s3={"addressing_style": settings.s3_addressing_style},
        # Checksums only where S3 requires them: S3-compatible servers differ in what they accept.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    secret = settings.s3_secret_access_key.get_secret_value()
    with _SESSION_LOCK:  # sessions are not thread-safe; the clients they make are
        return _session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=secret or None,
            config=config,
        )


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in MISSING


class _BodyReader(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so readers get a real buffered BinaryIO."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3FileStore:
    """One bucket; keys are the object keys. The boto3 client is shared between threads.

    Writes spool to a local file in `spool_dir` (the system's temporary directory by default).
    """

    kind = "s3"

    def __init__(self, bucket: str, client: S3Client, spool_dir: Path | None = None) -> None:
        self.bucket = bucket
        self.client = client
        self.spool_dir = spool_dir or Path(tempfile.gettempdir())

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as error:
            if _missing(error):
                raise ObjectNotFound(f"no stored file {key!r}") from error
            raise
        with io.BufferedReader(_BodyReader(response["Body"]), READ_BUFFER) as stream:
            yield cast(BinaryIO, stream)

    @contextlib.contextmanager
    def open_write(self, key: str, content_type: str) -> Iterator[BinaryIO]:
        check_key(key)
        # A named temp file lets upload_file read each part from disk as it sends it, so memory
        # stays flat; a file object would make s3transfer buffer whole parts in memory.
        with tempfile.NamedTemporaryFile(
            prefix="ops-s3-", suffix=".part", dir=self.spool_dir
        ) as spool:
            yield cast(BinaryIO, spool)
            spool.flush()
            self.client.upload_file(
                spool.name,
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=TRANSFER,
            )

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as error:
            if _missing(error):
                raise ObjectNotFound(f"no stored file {key!r}") from error
            raise
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def presign_put(self, key: str, *, expires: int, content_type: str) -> str:
        """A PUT that only creates: once an object is there, S3 refuses every other PUT (412),
        so parallel uploads cannot replace the bytes a confirmation hashed and recorded."""
        params = {
            "Bucket": self.bucket,
            "Key": check_key(key),
            "ContentType": content_type,
            "IfNoneMatch": "*",
        }
        return self.client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=expires, HttpMethod="PUT"
        )

    def put_headers(self, content_type: str) -> dict[str, str]:
        return {"Content-Type": content_type, "If-None-Match": "*"}

    def presign_get(self, key: str, *, expires: int, download_name: str) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": check_key(key),
            "ResponseContentDisposition": attachment(download_name),
            # S3 would serve the type the uploader sent (text/html, say); ours instead.
            "ResponseContentType": download_type(download_name),
        }
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def sweep(self, *, before: datetime) -> int:
        """Multipart uploads started before `before` and never finished (S3 keeps and bills
        their parts until they are aborted), and local spool files untouched since then."""
        removed = 0
        for page in self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket
        ):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < before:
                    removed += self._abort(upload["Key"], upload["UploadId"])
        return removed + _sweep_spool(self.spool_dir, before)

    def _abort(self, key: str, upload_id: str) -> int:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) == "NoSuchUpload":
                return 0  # finished or aborted meanwhile
            raise
        return 1


def _sweep_spool(folder: Path, before: datetime) -> int:
    removed = 0
    for entry in os.scandir(folder):
        if SPOOL.fullmatch(entry.name) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):  # its writer finished meanwhile
                if entry.stat().st_mtime < before.timestamp():
                    os.unlink(entry.path)
                    removed += 1
    return removed
