"""The dashboard's insight pages: analytics (charts as inline SVG, each with a table), dead
letters (admins: filter, replay one or by filter after a count) and the caller's inbox.

Pages read through the use cases (analytics.report, dead_letters.latest/count,
notifications.inbox); every change is a call of ui.js to the JSON API. The charts' geometry is
computed here and drawn by the templates: no chart library, nothing fetched at run time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from service.api.deps import ResourcesDep, UnitDep
from service.api.routes.dead_letters import DeadLetterFilterFields
from service.clock import utcnow
from service.domain.analytics import WINDOWS
from service.ui import pages
from service.ui.pages import PageCaller
from service.usecases import analytics, dead_letters, notifications
from service.usecases.analytics import AnalyticsReport, Percentiles
from service.usecases.dead_letters import MAX_REPLAY

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=pages.PageRoute)

DEAD_LETTERS_PAGE = 50
INBOX_PAGE = 20


# ---- Charts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """A rectangle of a chart; `tip` is its tooltip (<title>), `kind` its CSS class."""

    x: float
    y: float
    w: float
    h: float
    kind: str
    tip: str


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart: bars, text labels and grid lines, in a width x height viewBox."""

    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    grid: list[tuple[float, float, float, float]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(b.h > 0 and b.w > 0 for b in self.bars)


def _nice(top: float) -> float:
    """A round upper bound of an axis at or above `top` (1, 2, 5 times a power of ten)."""
    if top <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= top:
        scale *= 10
    while scale > top:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= top:
            return step * scale
    return 10 * scale  # pragma: no cover - the loop returns


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def duration(ms: float | None) -> str:
    """Milliseconds as people read them."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 90_000:
        return f"{ms / 1000:.1f} s"
    if ms < 5_400_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f} %"


#: the throughput chart's series, bottom up: (field, CSS class, words)
SERIES = (
    ("completed", "c-ok", "completed"),
    ("failed", "c-bad", "failed"),
    ("cancelled", "c-muted", "cancelled"),
    ("unfinished", "c-info", "not finished"),
)


def throughput_chart(report: AnalyticsReport) -> Chart:
    """Tasks created per UTC day, stacked by how they ended."""
    width, height, left, right, top, bottom = 760, 240, 44, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    days = report.throughput
    peak = _nice(max((d.created for d in days), default=0))
    step = plot_w / max(1, len(days))
    chart = Chart(width, height)
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        chart.grid.append((left, y, width - right, y))
        chart.labels.append(Label(left - 4, y + 4, _count(peak * frac), "end"))
    every = max(1, round(len(days) / 8))
    for i, day in enumerate(days):
        x = left + i * step
        values = {
            "completed": day.completed,
            "failed": day.failed,
            "cancelled": day.cancelled,
            "unfinished": day.created - day.completed - day.failed - day.cancelled,
        }
        base: float = top + plot_h
        for name, kind, words in SERIES:
            h = plot_h * values[name] / peak
            if h > 0:
                tip = f"{day.date.isoformat()}: {values[name]} {words} of {day.created} created"
                chart.bars.append(Bar(x + 1, base - h, max(1.0, step - 2), h, kind, tip))
                base -= h
        if i % every == 0:
            chart.labels.append(Label(x + step / 2, height - 8, day.date.strftime("%m-%d")))
    return chart


def _row_chart(
    rows: list[tuple[str, list[tuple[float, str, str, str]]]], peak: float, bar_h: int = 14
) -> Chart:
    """Horizontal bars: per row a name and bars of (value, CSS class, value text, tip)."""
    width, left, right, gap = 760, 170, 120, 10
    plot_w = width - left - right
    per_row = max(1, max((len(bars) for _, bars in rows), default=1)) * (bar_h + 2) + gap
    chart = Chart(width, max(40, per_row * len(rows) + gap))
    for r, (name, bars) in enumerate(rows):
        y0 = gap + r * per_row
        chart.labels.append(Label(left - 8, y0 + bar_h - 2, name[:24], "end"))
        for b, (value, kind, text, tip) in enumerate(bars):
            y = y0 + b * (bar_h + 2)
            w = plot_w * value / peak if peak else 0.0
            chart.bars.append(Bar(left, y, w, bar_h, kind, tip))
            chart.labels.append(Label(left + w + 6, y + bar_h - 3, text, "start"))
    chart.grid.append((left, 0, left, chart.height))
    return chart


def failure_chart(report: AnalyticsReport) -> Chart:
    """Failure rate among finished tasks, per type and over all (0..100 %)."""
    named = [(t.task_type, t.failure_rate) for t in report.by_type]
    named.append(("all types", report.totals.failure_rate))
    rows = [
        (name, [(rate or 0.0, "c-bad", percent(rate), f"{name}: failure rate {percent(rate)}")])
        for name, rate in named
    ]
    return _row_chart(rows, 1.0)


#: the percentiles' bars: (attribute, CSS class)
QUANTILES = (("p50", "c-p50"), ("p95", "c-p95"), ("p99", "c-p99"))


def percentile_chart(report: AnalyticsReport) -> Chart:
    """Run time p50/p95/p99 per type (from histogram buckets, within ±9.1 %)."""
    measured: list[tuple[str, Percentiles]] = [
        (t.task_type, t.run_time_ms) for t in report.by_type if t.run_time_ms.count
    ]
    peak = max((p.p99 or 0.0 for _, p in measured), default=0.0)
    rows = [
        (
            name,
            [
                (
                    getattr(p, q) or 0.0,
                    kind,
                    f"{q} {duration(getattr(p, q))}",
                    f"{name}: {q} run time {duration(getattr(p, q))}",
                )
                for q, kind in QUANTILES
            ],
        )
        for name, p in measured
    ]
    return _row_chart(rows, peak * 1.05, bar_h=10)


def hours_chart(report: AnalyticsReport) -> Chart:
    """Tasks created in each UTC hour of the day over the window."""
    width, height, left, right, top, bottom = 760, 200, 44, 8, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    counts = {h.hour: h.tasks for h in report.by_hour}
    peak = _nice(max(counts.values(), default=0))
    step = plot_w / 24
    chart = Chart(width, height)
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        chart.grid.append((left, y, width - right, y))
        chart.labels.append(Label(left - 4, y + 4, _count(peak * frac), "end"))
    for hour in range(24):
        h = plot_h * counts.get(hour, 0) / peak
        x = left + hour * step
        tip = f"{hour:02d}:00 UTC: {counts.get(hour, 0)} tasks"
        chart.bars.append(Bar(x + 2, top + plot_h - h, step - 4, h, "c-info", tip))
        if hour % 3 == 0:
            chart.labels.append(Label(x + step / 2, height - 8, f"{hour:02d}h"))
    return chart


# ---- Analytics ----------------------------------------------------------------------------


@router.get("/analytics")
async def analytics_page(
    request: Request,
    caller: PageCaller,
    uow: UnitDep,
    resources: ResourcesDep,
    days: Annotated[int, Query(ge=1, le=366)] = 7,
    task_type: Annotated[str, Query(alias="taskType", max_length=64)] = "",
) -> Response:
    error = None
    if days not in WINDOWS:
        error = f"The period must be one of {', '.join(map(str, WINDOWS))} days."
        days = WINDOWS[0]
    types = sorted(t.name for t in resources.catalog)
    if task_type and task_type not in types:
        error = f"Unknown task type {task_type!r}."
        task_type = ""
    report = await analytics.report(
        uow, caller, days=days, now=utcnow(), task_type=task_type or None
    )
    return pages.render(
        request,
        resources,
        "analytics.html",
        caller,
        "analytics",
        report=report,
        days=days,
        windows=WINDOWS,
        task_type=task_type,
        types=types,
        error=error,
        series=SERIES,
        quantiles=QUANTILES,
        throughput=throughput_chart(report),
        failures=failure_chart(report),
        percentiles=percentile_chart(report),
        hours=hours_chart(report),
        duration=duration,
        percent=percent,
        hours_by_number=sorted(report.by_hour, key=lambda h: h.hour),
    )


# ---- Dead letters -------------------------------------------------------------------------


def _dead_letter_query(params: dict[str, str]) -> dict[str, Any]:
    """The JSON API's filter (camelCase) for the page's fields; dates are whole UTC days."""
    names = ("topic", "eventType", "taskId")
    query: dict[str, Any] = {n: params[n].strip() for n in names if params.get(n, "").strip()}
    if params.get("from"):
        query["receivedFrom"] = f"{params['from']}T00:00:00Z"
    if params.get("to"):
        query["receivedTo"] = f"{params['to']}T23:59:59.999Z"
    if params.get("replayed") in ("true", "false"):
        query["replayed"] = params["replayed"] == "true"
    return query


@router.get("/dead-letters")
async def dead_letters_page(
    request: Request,
    caller: PageCaller,
    uow: UnitDep,
    resources: ResourcesDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    params = {k: v[:200] for k, v in request.query_params.items()}
    query = _dead_letter_query(params)
    error = None
    try:
        fields = DeadLetterFilterFields.model_validate(query)
    except ValidationError as problem:
        error = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problem.errors())
        fields, query = DeadLetterFilterFields(), {}
    filters = fields.filters()
    total = await dead_letters.count(uow, caller, filters)
    items = await dead_letters.latest(
        uow, caller, limit=DEAD_LETTERS_PAGE, offset=(page - 1) * DEAD_LETTERS_PAGE, filters=filters
    )
    return pages.render(
        request,
        resources,
        "dead_letters.html",
        caller,
        "dead-letters",
        items=items,
        total=total,
        page=page,
        pages=max(1, -(-total // DEAD_LETTERS_PAGE)),
        params=params,
        error=error,
        filter_json=json.dumps(query),
        max_replay=MAX_REPLAY,
        pretty=lambda v: json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True),
        page_link=lambda n: "/ui/dead-letters?" + urlencode({**params, "page": n}),
    )


# ---- Inbox --------------------------------------------------------------------------------


@router.get("/inbox")
async def inbox_page(
    request: Request,
    caller: PageCaller,
    uow: UnitDep,
    resources: ResourcesDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    unread: Annotated[bool, Query()] = False,
) -> Response:
    inbox = await notifications.inbox(uow, caller, unread=unread, page=page, page_size=INBOX_PAGE)
    params = {"unread": "true"} if unread else {}
    return pages.render(
        request,
        resources,
        "inbox.html",
        caller,
        "inbox",
        inbox=inbox,
        unread_only=unread,
        pages=max(1, -(-inbox.total // INBOX_PAGE)),
        page_link=lambda n: "/ui/inbox?" + urlencode({**params, "page": n}),
    )


def install(app: FastAPI) -> None:
    """Serve these pages, with the navigation's unread count like every page."""
    app.include_router(router, dependencies=pages.PAGE_DEPENDENCIES)
