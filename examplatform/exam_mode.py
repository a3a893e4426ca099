"""Whether exam mode is on: heavy work waits while students sit an exam.

`settings.EXAM_MODE` (the environment) is the default; ops override it at run
time (`manage.py exam_mode`, or the admin's Exam mode page), which writes one
row in the database. Each process keeps what it read for REFRESH_SECONDS, so
the hot path costs no query most of the time, every worker sees a change within
that time, and neither Redis nor a slow database is ever in the way.
"""

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError
from django.utils import timezone

from .errors import ServiceUnavailable

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
# What a paused endpoint tells clients when exam mode has no end time.
DEFAULT_RETRY_AFTER = 300


@dataclass(frozen=True)
class Override:
    """The run-time row as read: enabled None means "follow the environment"."""

    enabled: bool | None = None
    until: datetime | None = None
    changed_at: datetime | None = None
    changed_by: str = ""


@dataclass(frozen=True)
class State:
    on: bool
    # When exam mode will turn itself off (only while on).
    until: datetime | None
    # "environment", "runtime" or "expired" (a run-time "on" whose end time passed).
    source: str
    changed_at: datetime | None
    changed_by: str


# (override, time.monotonic() it was read); replaced whole, so threads need no lock.
_cache: tuple[Override, float] | None = None


class ExamModeOn(ServiceUnavailable):
    code = "exam_mode"
    default_detail = "Exam mode is on: this is paused while students sit an exam. Retry later."

    def __init__(self, detail: str | None = None, *, until: datetime | None = None, now: datetime | None = None):
        super().__init__(detail)
        remaining = (until - (now or timezone.now())).total_seconds() if until else None
        self.retry_after = max(1, math.ceil(remaining)) if remaining is not None else DEFAULT_RETRY_AFTER


def _refresh_seconds() -> float:
    return getattr(settings, "EXAM_MODE_REFRESH_SECONDS", REFRESH_SECONDS)


def _override() -> Override:
    global _cache
    cached = _cache
    if cached is not None and time.monotonic() - cached[1] < _refresh_seconds():
        return cached[0]
    from analytics_app.models import ExamModeSwitch

    try:
        row = ExamModeSwitch.objects.filter(pk=1).first()
    except DatabaseError:
        # Keep what we knew (or the environment's default) and try again after the next interval.
        logger.warning("exam mode: could not read the run-time switch; keeping the last known state")
        override = cached[0] if cached else Override()
    else:
        override = Override(row.enabled, row.until, row.changed_at, row.changed_by) if row else Override()
    _cache = (override, time.monotonic())
    return override


def resolve(override: Override, *, now: datetime) -> State:
    if override.enabled is None:
        return State(settings.EXAM_MODE, None, "environment", override.changed_at, override.changed_by)
    if override.enabled and override.until is not None and now >= override.until:
        return State(False, None, "expired", override.changed_at, override.changed_by)
    until = override.until if override.enabled else None
    return State(override.enabled, until, "runtime", override.changed_at, override.changed_by)


def state(*, now: datetime | None = None) -> State:
    return resolve(_override(), now=now or timezone.now())


def is_on() -> bool:
    return state().on


def expires_at() -> datetime | None:
    """When exam mode turns itself off; None when it is off or has no end time."""
    return state().until


def ensure_off() -> None:
    """Raise ExamModeOn (503, Retry-After) while exam mode is on: for heavy endpoints."""
    current = state()
    if current.on:
        raise ExamModeOn(until=current.until)


def refuse_unless_forced(*, force: bool, what: str) -> None:
    """For heavy management commands: refuse while exam mode is on unless --force."""
    if not force and is_on():
        raise CommandError(f"exam mode is on: {what} is paused until it is off (pass --force to run it anyway)")


def preload(override: Override | None = None) -> None:
    """Seed this process's cache without a query, as a warm worker has it (tests start from here)."""
    global _cache
    _cache = (override or Override(), time.monotonic())


def forget() -> None:
    """Drop this process's cached state: the next read goes to the database."""
    global _cache
    _cache = None


def _write(*, enabled: bool | None, until: datetime | None, by: str, now: datetime) -> State:
    from analytics_app.models import ExamModeSwitch

    ExamModeSwitch.objects.bulk_create(
        [ExamModeSwitch(id=1, enabled=enabled, until=until, changed_at=now, changed_by=by[:150])],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["enabled", "until", "changed_at", "changed_by"],
    )
    override = Override(enabled, until, now, by)
    preload(override)  # this process sees its own change at once; the others within REFRESH_SECONDS
    logger.warning("exam mode set to %s by %s (until %s)", {None: "environment"}.get(enabled, enabled), by, until)
    return resolve(override, now=now)


def turn_on(*, by: str, now: datetime, until: datetime | None = None) -> State:
    if until is not None and until <= now:
        raise ValueError("the end time must be in the future")
    return _write(enabled=True, until=until, by=by, now=now)


def turn_off(*, by: str, now: datetime) -> State:
    return _write(enabled=False, until=None, by=by, now=now)


def follow_environment(*, by: str, now: datetime) -> State:
    """Drop the run-time override: EXAM_MODE from the environment decides again."""
    return _write(enabled=None, until=None, by=by, now=now)


def describe(current: State) -> str:
    text = "on" if current.on else "off"
    if current.until:
        text += f" until {current.until.isoformat()}"
    text += {
        "environment": f" (EXAM_MODE default from the environment: {str(settings.EXAM_MODE).lower()})",
        "runtime": " (set at run time",
        "expired": " (its end time passed; set at run time",
    }[current.source]
    if current.source != "environment":
        text += f" by {current.changed_by or 'unknown'} at {current.changed_at.isoformat()})"
    return text
