"""The Idempotency-Key request header (IETF httpapi draft "The Idempotency-Key HTTP Header
Field"): a Structured Field string, read here, scoped to the caller and the operation."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header

from service.domain.errors import MalformedRequest

FIELD = "Idempotency-Key"
MAX_LENGTH = 255
#: The draft's form: an sf-string, "…" with \\ and \" escapes, printable ASCII inside.
_SF_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
#: What many clients send instead (Stripe's style): the bare key, printable ASCII, no quotes.
_BARE = re.compile(r"[\x21\x23-\x7e][\x20\x21\x23-\x7e]*")
_UNIT = r'(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])'
_VISIBLE_UNIT = r'(?:[\x21\x23-\x5b\x5d-\x7e]|\\["\\])'
#: What parse_key takes, for the OpenAPI document with maxLength DOCUMENTED_MAX_LENGTH
#: (tests/unit/api/test_idempotency_pattern.py holds the two to each other): a bare key of 1 to
#: 255 characters that starts and ends with a visible one, or a quoted one, not all spaces,
#: whose text between the quotes (escapes as written) is at most 255 characters.
PATTERN = (
    rf"^(?:[\x21\x23-\x7e](?:[\x20\x21\x23-\x7e]{{0,{MAX_LENGTH - 2}}}[\x21\x23-\x7e])?"
    rf'|"\x20*{_VISIBLE_UNIT}{_UNIT}*")$'
)
DOCUMENTED_MAX_LENGTH = MAX_LENGTH + 2


def parse_key(raw: str) -> str:
    """The key a header value carries; a 400 for an empty, too long or malformed one."""
    value = raw.strip(" \t")
    quoted = _SF_STRING.fullmatch(value)
    if quoted is not None:
        written = quoted.group(1)
        if len(written) > MAX_LENGTH:  # as written: a pattern can bound that, not the escapes
            raise MalformedRequest(f"must be at most {MAX_LENGTH} characters", field=FIELD)
        key = re.sub(r"\\(.)", r"\1", written)
    elif _BARE.fullmatch(value) and not value.endswith(" "):
        key = value
    else:
        raise MalformedRequest(
            'must be a string of printable ASCII characters, quoted ("…") or bare', field=FIELD
        )
    if not key.strip():
        raise MalformedRequest("must not be empty: send a unique key, e.g. a UUID", field=FIELD)
    if len(key) > MAX_LENGTH:
        raise MalformedRequest(f"must be at most {MAX_LENGTH} characters", field=FIELD)
    return key


async def idempotency_key(
    raw: Annotated[
        str | None,
        Header(
            alias=FIELD,
            max_length=MAX_LENGTH + 2 + MAX_LENGTH,  # quotes and escapes; parse_key bounds it
            # documented, not enforced here: parse_key answers a malformed key with a 400
            json_schema_extra={"pattern": PATTERN, "maxLength": DOCUMENTED_MAX_LENGTH},
            description="A unique key per request (e.g. a UUID): a repeat of the same request "
            "with it returns the first answer (200); the same key with another request is a "
            "422, and a key of an operation still in progress a 409.",
        ),
    ] = None,
) -> str | None:
    return None if raw is None else parse_key(raw)


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
