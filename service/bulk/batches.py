"""One batch of an import: what its write is asked (Options), what became of its candidates
(Outcome), and the checks on keys that need no store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from service.bulk.rows import Candidate, RowError

Mode = Literal["insert", "upsert"]


@dataclass
class Outcome:
    """What happened to one batch's candidates."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Options:
    mode: Mode = "insert"
    skip_duplicates: bool = False
    dry_run: bool = False


def dedupe_batch(
    candidates: Sequence[Candidate], options: Options
) -> tuple[list[Candidate], Outcome]:
    """Within one batch a key counts once: later copies are skipped, errors, or (upsert) win."""
    first = {candidate.key: candidate for candidate in candidates}
    outcome = Outcome()
    if len(first) == len(candidates):  # no key twice: the common case, in one pass
        return list(candidates), outcome
    first.clear()
    for candidate in candidates:
        earlier = first.get(candidate.key)
        if earlier is None:
            first[candidate.key] = candidate
        elif options.mode == "upsert" and not options.skip_duplicates:
            first[candidate.key] = candidate
            outcome.updated += 1
        elif options.skip_duplicates:
            outcome.skipped += 1
        else:
            outcome.errors.append(duplicate(candidate, f"row {earlier.row_number}"))
    return list(first.values()), outcome


def duplicate(candidate: Candidate, where: str) -> RowError:
    """The report line of a key seen before (`where`)."""
    message = f"duplicate key {candidate.key!r}: already in {where}"
    return RowError(candidate.row_number, "key", candidate.key, message)


def first_rows(errors: Sequence[RowError], rows: int) -> list[RowError]:
    """Every problem of the first `rows` rejected rows (by row number): what an import with
    little room left under maxErrors still lists in its report."""
    numbers = {error.row for error in errors}
    if len(numbers) <= rows:
        return list(errors)
    kept = set(sorted(numbers)[: max(rows, 0)])
    return [error for error in errors if error.row in kept]
