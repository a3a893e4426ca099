from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sessions_app.invariants import check_invariants, read_acks
from sessions_app.services import expire_overdue_sessions


class Command(BaseCommand):
    help = (
        "Check the exam-day invariants: no session graded twice, no duplicate answers, every acknowledged "
        "answer stored (--acks), no session active past its deadline plus grace. Exits non-zero on a violation."
    )

    def add_arguments(self, parser):
        parser.add_argument("--acks", help="the load test's ack log (JSON lines)")
        parser.add_argument(
            "--expire-overdue", action="store_true",
            help="run expire_sessions first, as cron would have, instead of reporting overdue sessions",
        )

    def handle(self, *args, acks, expire_overdue, **options):
        # One instant for the expiry pass and the check: a pass over thousands of sessions takes long enough
        # for more to fall due meanwhile, and cron would take those on its next round.
        now = timezone.now()
        if expire_overdue:
            self.stdout.write(f"expired {expire_overdue_sessions(now=now)} overdue sessions first")
        acks = Path(acks) if acks else None
        if acks is not None and not acks.exists():
            raise CommandError(f"no ack log at {acks}")
        report = check_invariants(now=now, acks=read_acks(acks) if acks else None)
        self.stdout.write("checked: " + ", ".join(f"{n} {what}" for what, n in report.checked.items()))
        for violation in report.violations:
            self.stderr.write(self.style.ERROR(str(violation)))
        if not report.ok:
            raise CommandError(f"{len(report.violations)} invariant(s) violated")
        self.stdout.write(self.style.SUCCESS("all exam invariants hold"))
