"""ETag and If-Match (RFC 9110 §8.8.3, §13.1.1) for a task: its tag is its version.

The tag is weak (W/"<version>"): the version moves with every change a person or a worker
makes, but not with a lease's heartbeat, which the answer also shows. If-Match takes it with
or without the W/ (a weak comparison, as clients copy the header as they got it).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header

FIELD = "If-Match"
_TAG = r'(?:W/)?"[0-9]{1,10}"'
#: "*", or a comma-separated list of the tags GET returns.
PATTERN = rf"^(?:\*|{_TAG}(?: *, *{_TAG}){{0,9}})$"
_VERSIONS = re.compile(r'"([0-9]{1,10})"')


def etag(version: int) -> str:
    return f'W/"{version}"'


async def if_match(
    raw: Annotated[
        str | None,
        Header(
            alias=FIELD,
            max_length=200,
            pattern=PATTERN,
            description='The ETag of GET /tasks/{id} (W/"<version>"): the change applies only '
            "to that version (412 otherwise); * or none: to any",
        ),
    ] = None,
) -> frozenset[int] | None:
    """The versions If-Match accepts; None: any (no header, or *)."""
    if raw is None or raw.strip() == "*":
        return None
    return frozenset(int(v) for v in _VERSIONS.findall(raw))


IfMatchDep = Annotated[frozenset[int] | None, Depends(if_match)]
