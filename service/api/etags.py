"""ETag and If-Match (RFC 9110 §8.8.3, §13.1.1) for a task: its tag is its version.

The tag is weak (W/"<version>"): the version moves with every change a person or a worker
makes, but not with a lease's heartbeat, which the answer also shows. If-Match takes it with
or without the W/ (a weak comparison, as clients copy the header as they got it).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header
from pydantic import WithJsonSchema

FIELD = "If-Match"
#: The versions an If-Match names: its "<digits>" tags, W/ or not. Anything else in it names
#: no version of a task, so such a header never matches (412), as an unknown tag would not.
_VERSIONS = re.compile(r'"([0-9]{1,10})"')


def etag(version: int) -> str:
    return f'W/"{version}"'


async def if_match(
    raw: Annotated[
        str | None,
        # a header is there or not: never null (the default schema would offer null)
        WithJsonSchema({"type": "string", "maxLength": 200}),
        Header(
            alias=FIELD,
            max_length=200,
            description='The ETag of GET /tasks/{id} (W/"<version>"): the change applies only '
            "to that version (412 otherwise, also for a value that names no version); * or none: "
            "to any",
        ),
    ] = None,
) -> frozenset[int] | None:
    """The versions If-Match accepts; None: any (no header, or *)."""
    if raw is None or raw.strip() == "*":
        return None
    return frozenset(int(v) for v in _VERSIONS.findall(raw))


IfMatchDep = Annotated[frozenset[int] | None, Depends(if_match)]
