import getpass
import re
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import dateparse, timezone

from examplatform import exam_mode

DURATION = re.compile(r"^(?:(?P<hours>\d+)h)?(?:(?P<minutes>\d+)m)?$")


def parse_until(text: str, *, now: datetime) -> datetime:
    """An ISO date-time, a clock time (HH:MM, its next occurrence) or a duration (90m, 2h, 1h30m)."""
    text = text.strip()
    match = DURATION.match(text)
    if match and any(match.groupdict().values()):
        return now + timedelta(hours=int(match["hours"] or 0), minutes=int(match["minutes"] or 0))
    try:
        moment = dateparse.parse_datetime(text)
        clock = None if moment else dateparse.parse_time(text)
    except ValueError:
        moment = clock = None
    if clock is not None:
        local_now = timezone.localtime(now)
        moment = local_now.replace(hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0)
        if moment <= local_now:
            moment += timedelta(days=1)
    if moment is None:
        raise CommandError(f"--until {text!r}: use an ISO date-time, HH:MM, or a duration like 90m or 2h")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if moment <= now:
        raise CommandError(f"--until {text!r} is in the past")
    return moment


class Command(BaseCommand):
    help = (
        "Turn exam mode on or off at run time, without a restart (every worker follows within a few seconds), "
        "or show it. `default` goes back to EXAM_MODE from the environment."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["on", "off", "status", "default"])
        parser.add_argument(
            "--until", help="with `on`: turn itself off at this time (ISO date-time, HH:MM, or 90m / 2h)"
        )
        parser.add_argument("--by", default="", help="who is changing it (recorded; defaults to the OS user)")

    def handle(self, *args, action, until, by, **options):
        now = timezone.now()
        if until and action != "on":
            raise CommandError("--until goes with `on` only")
        by = by or f"manage.py ({getpass.getuser()})"
        if action == "on":
            current = exam_mode.turn_on(by=by, now=now, until=parse_until(until, now=now) if until else None)
        elif action == "off":
            current = exam_mode.turn_off(by=by, now=now)
        elif action == "default":
            current = exam_mode.follow_environment(by=by, now=now)
        else:
            exam_mode.forget()  # status reads the database, not this process's cache
            current = exam_mode.state(now=now)
        self.stdout.write(f"exam mode: {exam_mode.describe(current)}")
        if action != "status":
            self.stdout.write(
                self.style.SUCCESS(f"every worker follows within {exam_mode.REFRESH_SECONDS:g} seconds")
            )
