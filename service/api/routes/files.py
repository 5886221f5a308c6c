"""/files: uploads and downloads through signed (local) or presigned (S3) URLs.

The content routes serve the local store's signed URLs: no caller identity, the signature is
the authority. They are declared first so that "content" is never taken for a file id.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse

from service.api import fields
from service.api.deps import CallerDep, ResourcesDep, SessionDep
from service.api.json_body import BoundedRoute
from service.api.problems import FILE_RESPONSES, PROBLEM_RESPONSES
from service.api.schemas import InputModel
from service.bootstrap import Resources
from service.clock import utcnow
from service.db.engine import session_scope
from service.db.repositories.files import FileRepository
from service.domain.callers import Caller
from service.domain.errors import Conflict, NotFound
from service.storage.base import FileTooLarge, write_stream
from service.storage.local import LocalFileStore
from service.usecases import files as file_usecases
from service.usecases.files import (
    DownloadLink,
    FilePolicy,
    FileStatus,
    FileView,
    UnsupportedMediaType,
    Upload,
)
from service.usecases.views import CamelModel

router = APIRouter(
    prefix="/files", tags=["files"], responses=PROBLEM_RESPONSES, route_class=BoundedRoute
)

Expires = Annotated[int, Query(ge=0, le=2**40)]
Signature = Annotated[str, Query(min_length=1, max_length=128)]


class FileCreate(InputModel):
    """A file to upload: its name, and optionally its type, exact size in bytes and SHA-256."""

    file_name: fields.FileName
    content_type: fields.ContentType | None = None
    size: fields.ByteSize | None = None
    sha256: fields.Sha256 | None = None


class FilePage(CamelModel):
    items: list[FileView]
    total: int
    page: int
    page_size: int


def _local(resources: Resources) -> LocalFileStore:
    if not isinstance(resources.store, LocalFileStore):
        raise NotFound("this service stores files in S3; use the URL it gave you")
    return resources.store


def _check_content_type(request: Request, declared: str) -> None:
    """Refuse a PUT whose Content-Type is not the file's (parameters and case aside), as S3
    refuses one its presigned URL was not signed for; a PUT without one is taken."""
    sent = request.headers.get("content-type")
    if sent is not None and file_usecases.media_type(sent) != file_usecases.media_type(declared):
        raise UnsupportedMediaType(
            f"this upload URL takes Content-Type {declared} (see uploadHeaders), not {sent}"
        )


@router.put("/content/{key:path}", response_model=FileView, include_in_schema=False)
async def put_content(
    key: str,
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    expires: Expires,
    signature: Signature,
) -> FileView:
    """Receive an upload through a signed URL (local store), hashing it as it streams in.

    No transaction is open while the bytes stream in (SQLite has one writer): the file is looked
    up in a short one, and `session` is first used to mark it uploaded afterwards.
    """
    store = _local(resources)
    store.signer.verify("PUT", key, expires=expires, signature=signature)
    limit = resources.settings.files_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FileTooLarge.over(limit, size=int(declared))
    async with session_scope(resources.sessionmaker) as lookup:
        row = await FileRepository(lookup).get_by_key(key)
    if row is None:
        raise NotFound("no file is waiting for this upload")
    if row.status != FileStatus.PENDING:
        raise Conflict("this file was uploaded already", file_id=str(row.id))
    _check_content_type(request, row.content_type)
    stored = await write_stream(store, key, row.content_type, request.stream(), limit=limit)
    policy = FilePolicy.from_settings(resources.settings)
    return await file_usecases.mark_uploaded(
        session,
        store,
        row,
        stored.size,
        sha256=stored.sha256,
        policy=policy,
        now=utcnow(),
        actor=Caller(row.owner),
    )


@router.get("/content/{key:path}", include_in_schema=False)
async def get_content(
    key: str,
    resources: ResourcesDep,
    expires: Expires,
    signature: Signature,
    name: Annotated[str, Query(max_length=255)] = "",
) -> FileResponse:
    """Serve a download through a signed URL (local store); Range requests work."""
    store = _local(resources)
    store.signer.verify("GET", key, expires=expires, signature=signature, name=name)
    path = store.path(key)
    if not path.is_file():
        raise NotFound("the file is no longer stored")
    name = name or path.name
    media_type = mimetypes.guess_type(name)[0] or file_usecases.DEFAULT_CONTENT_TYPE
    return FileResponse(path, media_type=media_type, filename=name)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=Upload, responses=FILE_RESPONSES
)
async def create_file(
    body: FileCreate,
    session: SessionDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
) -> Upload:
    """Record a file and return the URL to PUT its bytes to (with `uploadHeaders`).

    413 when the announced size is over the limit. Bytes of another size or SHA-256 than
    announced are refused when they arrive (422), and can be uploaded again.
    """
    new = file_usecases.NewFile(body.file_name, body.content_type, body.size, body.sha256)
    upload = await file_usecases.create_upload(
        session,
        resources.store,
        caller,
        new,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )
    response.headers["Location"] = f"/api/v1/operations/files/{upload.file.id}"
    return upload


@router.get("", response_model=FilePage)
async def list_files(
    session: SessionDep,
    caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100, alias="pageSize")] = 20,
) -> FilePage:
    """The caller's files (an admin's: everyone's), newest first."""
    items, total = await file_usecases.list_files(session, caller, page=page, page_size=page_size)
    return FilePage(items=items, total=total, page=page, page_size=page_size)


@router.get("/{file_id}", response_model=FileView)
async def get_file(file_id: UUID, session: SessionDep, caller: CallerDep) -> FileView:
    return await file_usecases.get(session, caller, file_id)


@router.post("/{file_id}/complete", response_model=FileView, responses=FILE_RESPONSES)
async def complete_file(
    file_id: UUID, session: SessionDep, caller: CallerDep, resources: ResourcesDep
) -> FileView:
    """Confirm an upload made straight to S3; the file becomes ready once its bytes are there
    (and hashed). Bytes that are too large (413) or not as announced (422) are deleted."""
    return await file_usecases.complete_upload(
        session,
        resources.store,
        caller,
        file_id,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )


@router.get("/{file_id}/download", response_model=DownloadLink)
async def download_file(
    file_id: UUID, session: SessionDep, caller: CallerDep, resources: ResourcesDep
) -> DownloadLink:
    """A short-lived URL that serves the file as an attachment."""
    return await file_usecases.download_link(
        session,
        resources.store,
        caller,
        file_id,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )
