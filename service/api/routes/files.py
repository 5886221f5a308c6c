"""/files: uploads and downloads through signed (local) or presigned (S3) URLs.

The content routes serve the local store's signed URLs: no caller identity, the signature is
the authority. They are declared first so that "content" is never taken for a file id.
"""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse
from starlette.requests import ClientDisconnect

from service.api import fields
from service.api.deps import CallerDep, ResourcesDep, UnitDep
from service.api.json_body import BoundedRoute
from service.api.schemas import InputModel
from service.bootstrap import Resources
from service.clock import utcnow
from service.domain.errors import NotFound
from service.storage.base import download_type
from service.storage.local import LocalFileStore
from service.usecases import downloads, files as file_usecases
from service.usecases.downloads import DownloadLink
from service.usecases.files import FilePolicy, FileView
from service.usecases.uploads import confirmation, creation, receipt
from service.usecases.uploads.creation import Upload
from service.usecases.views import CamelModel
from service.web.problems import FILE_RESPONSES, PROBLEM_RESPONSES, problem

router = APIRouter(
    prefix="/files", tags=["files"], responses=PROBLEM_RESPONSES, route_class=BoundedRoute
)
logger = logging.getLogger(__name__)

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


def disconnected(request: Request) -> JSONResponse:
    """The answer nobody reads to a request whose client went away mid-body: one warning line
    instead of a traceback (the file stays pending, and the upload can be repeated)."""
    logger.warning(
        "%s %s: the client disconnected before its body ended",
        request.method,
        request.url.path,
        extra={"action": "file.upload_disconnected"},
    )
    return problem(
        400,
        "client-disconnected",
        "The client disconnected before the request body ended.",
        "the upload is incomplete; nothing was stored",
        instance=request.url.path,
    )


def _local(resources: Resources) -> LocalFileStore:
    if not isinstance(resources.store, LocalFileStore):
        raise NotFound("this service stores files in S3; use the URL it gave you")
    return resources.store


def _length(request: Request) -> int | None:
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


@router.put("/content/{key:path}", response_model=FileView, include_in_schema=False)
async def put_content(
    key: str,
    request: Request,
    resources: ResourcesDep,
    expires: Expires,
    signature: Signature,
) -> FileView | JSONResponse:
    """Receive an upload through a signed URL (local store), hashing it as it streams in.

    Of parallel PUTs to one URL one is taken and the others get 409; no transaction is open
    while the bytes stream in (SQLite has one writer).
    """
    store = _local(resources)
    store.signer.verify("PUT", key, expires=expires, signature=signature)
    sent = receipt.Sent(request.headers.get("content-type"), _length(request))
    try:
        return await receipt.receive_signed(
            resources.unit,
            store,
            key,
            request.stream(),
            sent,
            policy=FilePolicy.from_settings(resources.settings),
            clock=utcnow,
        )
    except ClientDisconnect:
        return disconnected(request)


@router.get("/content/{key:path}", include_in_schema=False)
async def get_content(
    key: str,
    resources: ResourcesDep,
    expires: Expires,
    signature: Signature,
    name: Annotated[str, Query(max_length=255)] = "",
) -> FileResponse:
    """Serve a download through a signed URL (local store) as an attachment whose type is never
    one a browser renders (see download_type); Range requests work."""
    store = _local(resources)
    store.signer.verify("GET", key, expires=expires, signature=signature, name=name)
    path = store.path(key)
    if not path.is_file():
        raise NotFound("the file is no longer stored")
    name = name or path.name
    return FileResponse(
        path,
        media_type=download_type(name),
        filename=name,
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=Upload, responses=FILE_RESPONSES
)
async def create_file(
    body: FileCreate,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
) -> Upload:
    """Record a file and return the URL to PUT its bytes to (with `uploadHeaders`).

    413 when the announced size is over the limit. Bytes of another size or SHA-256 than
    announced are refused when they arrive (422), and can be uploaded again.
    """
    new = creation.NewFile(body.file_name, body.content_type, body.size, body.sha256)
    upload = await creation.create_upload(
        uow,
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
    uow: UnitDep,
    caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100, alias="pageSize")] = 20,
) -> FilePage:
    """The caller's files (an admin's: everyone's), newest first."""
    items, total = await file_usecases.list_files(uow, caller, page=page, page_size=page_size)
    return FilePage(items=items, total=total, page=page, page_size=page_size)


@router.get("/{file_id}", response_model=FileView)
async def get_file(file_id: UUID, uow: UnitDep, caller: CallerDep) -> FileView:
    return await file_usecases.get(uow, caller, file_id)


@router.post("/{file_id}/complete", response_model=FileView, responses=FILE_RESPONSES)
async def complete_file(
    file_id: UUID, uow: UnitDep, caller: CallerDep, resources: ResourcesDep
) -> FileView:
    """Confirm an upload made straight to S3; the file becomes ready once its bytes are there
    (and hashed). Bytes that are too large (413) or not as announced (422) are deleted."""
    return await confirmation.complete_upload(
        uow,
        resources.store,
        caller,
        file_id,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )


@router.get("/{file_id}/download", response_model=DownloadLink)
async def download_file(
    file_id: UUID, uow: UnitDep, caller: CallerDep, resources: ResourcesDep
) -> DownloadLink:
    """A short-lived URL that serves the file as an attachment."""
    return await downloads.download_link(
        uow,
        resources.store,
        caller,
        file_id,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
    )
