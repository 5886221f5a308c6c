"""/bulk: convenience spellings of import and export tasks (the older API's paths)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, TypeVar, get_args
from uuid import UUID

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, RootModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect

from service.api import fields
from service.api.deps import CallerDep, ResourcesDep, UnitDep
from service.api.idempotency import IdempotencyKeyDep
from service.api.json_body import BoundedRoute
from service.api.routes import files as file_routes, tasks as task_routes
from service.api.schemas import InputModel, TaskCreate, TaskCreated, TaskPublic
from service.bootstrap import Resources
from service.clock import utcnow
from service.db.unit_of_work import UnitOfWork
from service.domain.callers import Caller
from service.domain.errors import NotFound
from service.storage.base import WRITE_BATCH, FileTooLarge
from service.usecases import content_types, submissions, tasks as task_usecases
from service.usecases.files import FilePolicy
from service.usecases.submissions import Submitted
from service.usecases.tasks import IdempotencyKey
from service.web.problems import CALLER_RESPONSES, problem, responses

router = APIRouter(
    prefix="/bulk", tags=["bulk"], responses=CALLER_RESPONSES, route_class=BoundedRoute
)

M = TypeVar("M", bound=BaseModel)
#: Bytes a multipart body may carry beyond the file itself (boundaries, headers, fields).
FORM_OVERHEAD = 64 * 1024
#: The largest text field of a form (Starlette's default max_part_size).
FORM_FIELD_BYTES = 1024 * 1024

IMPORT_OPERATION = "bulk.import"
EXPORT_OPERATION = "bulk.export"

Entity = Literal["product", "customer", "order", "inventory"]
BULK_TYPES = frozenset({"import", "export"})
PriorityLabel = Literal["low", "normal", "high", "urgent"]


def _any_case(text: str) -> str:
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else c.replace(".", r"\.") for c in text
    )


#: The media types an import reads (any case, parameters allowed), for the document: another
#: type is a 415 (files.check_import_type), which no mere content-type pattern could tell.
IMPORT_TYPES = (
    "^("
    + "|".join(_any_case(t) for t in sorted(content_types.IMPORT_CONTENT_TYPES))
    + r")( *;[ -~]{1,200})?$"
)


class BulkImport(InputModel):
    """An import: the answer carries the uploadUrl to PUT the file to."""

    entity_type: Entity
    file_name: fields.FileName
    file_size: fields.ByteSize | None = None
    file_content_type: fields.ContentType | None = Field(
        None, json_schema_extra={"pattern": IMPORT_TYPES}
    )
    file_sha256: fields.Sha256 | None = None
    params: fields.Params = Field(default_factory=dict)
    priority: PriorityLabel = "normal"

    def as_task(self) -> TaskCreate:
        return TaskCreate(
            task_type="import",
            entity_type=self.entity_type,
            file_name=self.file_name,
            file_size=self.file_size,
            file_content_type=self.file_content_type,
            file_sha256=self.file_sha256,
            params=self.params,
            priority=self.priority,
        )


class _Params(RootModel[dict[str, Any]]):
    """The multipart `params` field: a JSON object of import options."""


class BulkExport(InputModel):
    """An export; its file is the task's download once it completes."""

    entity_type: Entity
    params: fields.Params = Field(default_factory=dict)
    priority: PriorityLabel = "normal"


def _import_body() -> dict[str, Any]:
    """The import's two request bodies for the OpenAPI description (the route reads its body
    itself, because FastAPI binds one body type per route)."""
    form = {
        "type": "object",
        "required": ["file", "entityType"],
        "additionalProperties": False,  # another field is a 422, as in the JSON body
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "the file to import"},
            "entityType": {"type": "string", "enum": list(get_args(Entity))},
            "params": {
                "type": "string",
                "maxLength": FORM_FIELD_BYTES,
                "description": "import options as a JSON object (see OPS_PARAMS_MAX_BYTES)",
            },
            "priority": {"type": "string", "enum": list(get_args(PriorityLabel))},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": BulkImport.model_json_schema(by_alias=True)},
                "multipart/form-data": {"schema": form},
            },
        }
    }


def _valid(model: type[M], raw: Any, *, field: str = "") -> M:
    """Validate a body (or the form `field`) read by hand, failing as FastAPI's own body
    validation does (422 with each field and reason); text or bytes are parsed as JSON."""
    try:
        if not isinstance(raw, str | bytes):
            return model.model_validate(raw)
        return model.model_validate_json(raw)
    except ValidationError as error:
        prefix = (field,) if field else ()
        errors = [{**e, "loc": prefix + tuple(e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors) from error


def _missing(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": (field,), "msg": message, "type": "missing"}])


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskCreated,
    responses=task_routes.REPLAY | responses(400, 409, 413, 415),
    openapi_extra=_import_body(),
)
async def bulk_import(
    request: Request,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
) -> TaskCreated | JSONResponse:
    """Same as POST /tasks with taskType "import".

    A JSON body answers with the uploadUrl to PUT the file to. A multipart/form-data body
    (fields file, entityType, params as JSON text, priority, fileSha256) carries the file
    itself: the task is created with it and goes straight to the workers (for scripts and small
    files). 413 for a file over the limit, 415 for a file type the import does not read.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    key = None if idempotency_key is None else IdempotencyKey(idempotency_key, IMPORT_OPERATION)
    if media == "multipart/form-data":
        return await _import_form(request, caller, resources, response, key)
    if media not in ("application/json", ""):
        return problem(
            415,
            "unsupported-media-type",
            "The request body has a type this endpoint does not read.",
            f"send application/json or multipart/form-data, not {media}",
            instance=request.url.path,
        )
    body = _valid(BulkImport, await request.json())  # within max_body_bytes (JSONRequest)
    submitted = await _submit(uow, body.as_task(), caller, resources, key)
    return task_routes.answer_created(submitted, response)


async def _submit(
    uow: UnitOfWork,
    body: TaskCreate,
    caller: Caller,
    resources: Resources,
    key: IdempotencyKey | None,
) -> Submitted:
    return await submissions.submit(
        uow,
        caller,
        body.as_new_task(),
        catalog=resources.catalog,
        store=resources.store,
        policy=FilePolicy.from_settings(resources.settings),
        now=utcnow(),
        idempotency=key,
    )


async def _import_form(
    request: Request,
    caller: Caller,
    resources: Resources,
    response: Response,
    idempotency: IdempotencyKey | None,
) -> TaskCreated | JSONResponse:
    """Create the import with the file of a multipart body (submissions.submit_with_file).

    Starlette spools the part to a temporary file (memory stays flat); a client gone before
    the body ended is one warning line, and nothing is created.
    """
    limit = resources.settings.files_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise FileTooLarge.over(limit)
    try:
        async with request.form(max_files=1, max_fields=8) as form:
            upload, body = _read_form(form, limit)
            submitted = await submissions.submit_with_file(
                resources.unit,
                caller,
                body.as_task().as_new_task(),
                _chunks(upload),
                catalog=resources.catalog,
                store=resources.store,
                policy=FilePolicy.from_settings(resources.settings),
                clock=utcnow,
                idempotency=idempotency,
            )
    except ClientDisconnect:
        return file_routes.disconnected(request)
    return task_routes.answer_created(submitted, response)


def _read_form(form: FormData, limit: int) -> tuple[UploadFile, BulkImport]:
    """The form's file part and its fields as an import, checked as a JSON body would be."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise _missing("file", "Field required: the file to import, as a form-data file part")
    if upload.size is not None and upload.size > limit:
        raise FileTooLarge.over(limit, size=upload.size, field="file")
    if upload.content_type is not None:
        content_types.check_import_type(upload.content_type, field="file")
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    params = fields.pop("params", "{}") or "{}"
    body = _valid(
        BulkImport,
        {
            **fields,
            "fileName": upload.filename or "upload",
            "fileSize": upload.size,
            "fileContentType": upload.content_type,
            "params": _valid(_Params, params, field="params").root,
        },
    )
    return upload, body


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(WRITE_BATCH):
        yield chunk


@router.post(
    "/export",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskCreated,
    responses=task_routes.REPLAY | responses(400, 409, 413),
)
async def bulk_export(
    body: BulkExport,
    uow: UnitDep,
    caller: CallerDep,
    resources: ResourcesDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
) -> TaskCreated:
    """Same as POST /tasks with taskType "export"."""
    create = TaskCreate(
        task_type="export",
        entity_type=body.entity_type,
        params=body.params,
        priority=body.priority,
    )
    key = None if idempotency_key is None else IdempotencyKey(idempotency_key, EXPORT_OPERATION)
    submitted = await _submit(uow, create, caller, resources, key)
    return task_routes.answer_created(submitted, response)


@router.get("/operations/{task_id}", response_model=TaskPublic, responses=responses(404))
async def bulk_operation(task_id: UUID, uow: UnitDep, caller: CallerDep) -> TaskPublic:
    """An import or export with its counts (processed, succeeded, failed items); 404 for a task
    of another type."""
    task = await task_usecases.get(uow, caller, task_id)
    if task.task_type not in BULK_TYPES:
        raise NotFound(f"task {task_id} is not an import or an export", task_id=str(task_id))
    return TaskPublic.of(task)
