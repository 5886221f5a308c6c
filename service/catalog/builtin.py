"""The task types this service runs; the worker registers one handler per entry."""

from __future__ import annotations

import csv
import gzip
import zipfile
from xml.etree.ElementTree import ParseError

from pydantic import Field

from service.bulk import params as bulk_params
from service.bulk.schemas import SCHEMAS
from service.catalog.model import Submission, TaskType
from service.catalog.notification_batch import NotificationBatchParams, check_batch
from service.domain.callers import ADMIN_ROLE
from service.domain.jobs import JOB_NAMES
from service.domain.tasks import Queue
from service.wire import StrictModel

#: The longest sleep: a day, far beyond any test or demonstration.
MAX_SLEEP_SECONDS = 24 * 3600


class NoParams(StrictModel):
    """No parameters."""


class SleepParams(StrictModel):
    """Sleeps, reporting progress each second."""

    seconds: float = Field(1.0, ge=0, le=MAX_SLEEP_SECONDS, description="how long to sleep")


class FailParams(StrictModel):
    """Fails on purpose, to exercise retries and failures."""

    message: str = Field("failing on purpose", max_length=2000, description="the error message")
    until_attempt: int | None = Field(
        None, ge=1, le=100, description="succeed from this attempt on (1 is the first run)"
    )
    permanent: bool = Field(False, description="fail at once, without retries")


def _check_import(submission: Submission) -> None:
    bulk_params.check_import(
        submission.entity_type,
        dict(submission.params),
        file_name=submission.file_name,
        has_input=submission.has_input,
    )


def _check_export(submission: Submission) -> None:
    bulk_params.check_export(submission.entity_type, dict(submission.params))


#: Input that no retry will read any better: a malformed file fails its import at once.
MALFORMED_INPUT: tuple[type[BaseException], ...] = (
    UnicodeDecodeError,
    zipfile.BadZipFile,
    gzip.BadGzipFile,
    ParseError,
    csv.Error,
)

ENTITIES = tuple(sorted(SCHEMAS))

BUILTIN: tuple[TaskType, ...] = (
    TaskType("noop", "Completes at once (benchmarks, smoke tests).", NoParams),
    TaskType("sleep", SleepParams.__doc__ or "", SleepParams),
    TaskType("fail", FailParams.__doc__ or "", FailParams),
    TaskType(
        "import",
        "Reads a CSV, JSON Lines or XLSX file (maybe gzipped) into the entity's owner; bad rows "
        "go to an error report.",
        bulk_params.ImportParams,
        entity_types=ENTITIES,
        queue=Queue.BULK,
        non_retryable=MALFORMED_INPUT,
        check=_check_import,
        needs_file=True,
    ),
    TaskType(
        "export",
        "Writes the entity's records to a CSV, JSON Lines or XLSX file to download.",
        bulk_params.ExportParams,
        entity_types=ENTITIES,
        queue=Queue.BULK,
        check=_check_export,
    ),
    TaskType(
        "notification-batch",
        NotificationBatchParams.__doc__ or "",
        NotificationBatchParams,
        queue=Queue.BULK,
        check=check_batch,
    ),
    TaskType(
        "maintenance",
        "Runs one maintenance job now, outside its schedule (admins and services only).",
        NoParams,
        entity_types=JOB_NAMES,
        role=ADMIN_ROLE,
    ),
)
