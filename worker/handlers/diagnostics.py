"""Diagnostic handlers: noop (benchmarks), sleep (progress and cancel), fail (retry paths)."""

from __future__ import annotations

import asyncio
import math
import time

from service.catalog.builtin import FailParams, SleepParams
from service.domain.errors import PermanentFailure
from worker.context import HandlerContext
from worker.registry import HandlerRegistry


async def noop(ctx: HandlerContext) -> None:
    """Completes at once."""


async def sleep(ctx: HandlerContext) -> None:
    """Sleeps params.seconds, reporting progress each second; stops on cancel."""
    seconds = ctx.params_as(SleepParams).seconds
    ticks = max(1, math.ceil(seconds))
    await ctx.report(progress=0, total_items=ticks, processed_items=0)
    start = time.monotonic()
    for tick in range(1, ticks + 1):
        await asyncio.sleep(max(0.0, start + min(tick, seconds) - time.monotonic()))
        await ctx.report(
            progress=int(100 * tick / ticks), processed_items=tick, succeeded_items=tick
        )
    await ctx.log("info", f"slept {seconds} seconds")


async def fail(ctx: HandlerContext) -> None:
    """Raises params.message before attempt params.untilAttempt; `permanent` fails at once."""
    params = ctx.params_as(FailParams)
    if params.permanent:
        raise PermanentFailure(params.message)
    if params.until_attempt is None or ctx.task.attempts < params.until_attempt:
        raise RuntimeError(params.message)


def register(registry: HandlerRegistry) -> None:
    registry.add("noop", None, noop)
    registry.add("sleep", None, sleep)
    registry.add("fail", None, fail)
