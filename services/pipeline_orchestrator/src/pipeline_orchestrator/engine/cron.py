"""Cron schedules in a timezone: validation and fire times (croniter over zoneinfo)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from pipeline_orchestrator.errors import InvalidCron, InvalidTimezone

MAX_CATCHUP = 1000
_EPSILON = timedelta(microseconds=1)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezone(
            f"unknown timezone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'",
            {"timezone": name},
        ) from None


def check_cron(expr: str) -> str:
    expr = " ".join(expr.split())
    if not croniter.is_valid(expr) or len(expr.split()) not in (5, 6):
        raise InvalidCron(
            f"invalid cron expression {expr!r}; use five fields: minute hour day-of-month month day-of-week",
            {"cron": expr},
        )
    return expr


def next_fire(expr: str, tz: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (UTC in, UTC out), in the schedule's timezone."""
    local = after.astimezone(zone(tz))
    fire: datetime = croniter(expr, local).get_next(datetime)
    return fire.astimezone(UTC)


def fires_between(
    expr: str, tz: str, start: datetime, end: datetime, limit: int = MAX_CATCHUP
) -> list[datetime]:
    """Fire times in [start, end], at most ``limit`` (the earliest ones)."""
    out: list[datetime] = []
    it = croniter(expr, start.astimezone(zone(tz)) - _EPSILON)
    while len(out) < limit:
        fire = it.get_next(datetime).astimezone(UTC)
        if fire > end:
            break
        if fire >= start:
            out.append(fire)
    return out


def day_bounds(first: date, last: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC range of whole days ``first`` to ``last`` (both included) in ``tz``."""
    local = zone(tz)
    start = datetime.combine(first, time(), tzinfo=local).astimezone(UTC)
    after = datetime.combine(last + timedelta(days=1), time(), tzinfo=local).astimezone(UTC)
    return start, after - _EPSILON
