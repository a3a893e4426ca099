"""Exam mode: the environment's default, the run-time switch, its expiry and the per-process cache."""

import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics_app.models import ExamModeSwitch
from examplatform import exam_mode

pytestmark = pytest.mark.django_db


def status_line() -> str:
    from io import StringIO

    out = StringIO()
    call_command("exam_mode", "status", stdout=out)
    return out.getvalue()


def test_it_follows_exam_mode_from_the_environment_by_default(settings):
    assert exam_mode.is_on() is False
    settings.EXAM_MODE = True
    assert exam_mode.is_on() is True
    assert exam_mode.state().source == "environment" and exam_mode.expires_at() is None


def test_it_turns_on_and_off_at_run_time_whatever_the_environment_says(settings):
    now = timezone.now()
    exam_mode.turn_on(by="ops", now=now)
    assert exam_mode.is_on() and ExamModeSwitch.objects.get().enabled is True
    settings.EXAM_MODE = True
    exam_mode.turn_off(by="ops", now=now)
    assert not exam_mode.is_on()
    exam_mode.follow_environment(by="ops", now=now)
    assert exam_mode.is_on() and exam_mode.state().source == "environment"


def test_it_turns_itself_off_when_its_end_time_passes():
    now = timezone.now()
    exam_mode.turn_on(by="ops", now=now, until=now + timedelta(seconds=1))
    assert exam_mode.is_on() and exam_mode.expires_at() == now + timedelta(seconds=1)
    assert exam_mode.state(now=now + timedelta(seconds=2)).on is False
    time.sleep(1.1)
    assert exam_mode.is_on() is False and exam_mode.expires_at() is None
    assert exam_mode.state().source == "expired"


def test_it_rejects_an_end_time_in_the_past():
    with pytest.raises(ValueError):
        exam_mode.turn_on(by="ops", now=timezone.now(), until=timezone.now() - timedelta(minutes=1))


def test_a_worker_sees_another_workers_change_only_after_its_cache_expires(settings, django_assert_num_queries):
    settings.EXAM_MODE_REFRESH_SECONDS = 0.3
    exam_mode.forget()
    with django_assert_num_queries(1):
        assert exam_mode.is_on() is False
    # Another worker flips it: the row changes, this process's cache doesn't.
    ExamModeSwitch.objects.create(enabled=True, changed_at=timezone.now(), changed_by="elsewhere")
    with django_assert_num_queries(0):  # the hot path costs no query while the cache is fresh
        for _ in range(50):
            assert exam_mode.is_on() is False
    time.sleep(0.35)
    with django_assert_num_queries(1):
        assert exam_mode.is_on() is True


class _Rollback(Exception):
    pass


def test_it_keeps_the_last_known_state_when_the_database_cannot_answer(settings):
    from django.db import connection, transaction

    exam_mode.turn_on(by="ops", now=timezone.now())
    settings.EXAM_MODE_REFRESH_SECONDS = 0
    with pytest.raises(_Rollback), transaction.atomic():
        # A real database error on the read (the table is gone), rolled back afterwards.
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {ExamModeSwitch._meta.db_table} RENAME TO exam_mode_gone")
        assert exam_mode.is_on() is True
        exam_mode.forget()
        assert exam_mode.is_on() is False  # nothing known: the environment's default
        raise _Rollback
    assert exam_mode.is_on() is True


def test_the_command_turns_it_on_until_a_time_and_reports_status():
    call_command("exam_mode", "on", "--until", "90m", "--by", "ops-anna")
    row = ExamModeSwitch.objects.get()
    assert row.enabled and row.changed_by == "ops-anna"
    assert abs((row.until - timezone.now()) - timedelta(minutes=90)) < timedelta(seconds=5)
    assert status_line().startswith("exam mode: on until ") and "by ops-anna" in status_line()
    call_command("exam_mode", "off")
    assert status_line().startswith("exam mode: off (set at run time")
    call_command("exam_mode", "default")
    assert "EXAM_MODE default from the environment: false" in status_line()


@pytest.mark.parametrize(
    ("text", "minutes"), [("2h", 120), ("1h30m", 90), ("45m", 45)]
)
def test_the_command_takes_durations(text, minutes):
    call_command("exam_mode", "on", "--until", text)
    assert abs(exam_mode.expires_at() - timezone.now() - timedelta(minutes=minutes)) < timedelta(seconds=5)


def test_the_command_takes_an_iso_time_and_a_clock_time():
    moment = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    call_command("exam_mode", "on", "--until", moment.isoformat())
    assert exam_mode.expires_at() == moment
    call_command("exam_mode", "on", "--until", "23:59")
    until = exam_mode.expires_at()
    assert (until.hour, until.minute) == (23, 59) and timezone.now() < until < timezone.now() + timedelta(days=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["on", "--until", "2001-01-01T00:00"], "in the past"),
        (["on", "--until", "tomorrow-ish"], "use an ISO date-time"),
        (["off", "--until", "2h"], "goes with `on` only"),
    ],
)
def test_the_command_refuses_bad_end_times(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("exam_mode", *args)
    assert not ExamModeSwitch.objects.exists()


def test_the_row_is_a_singleton():
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        ExamModeSwitch.objects.create(id=2, enabled=True, changed_at=timezone.now())
