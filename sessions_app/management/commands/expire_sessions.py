from django.core.management.base import BaseCommand
from django.utils import timezone

from sessions_app.services import expire_overdue_sessions


class Command(BaseCommand):
    help = (
        "Close and grade every session past its deadline plus grace. For cron: concurrent copies "
        "split the work (SKIP LOCKED) and never grade a session twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only count the overdue sessions")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, dry_run, batch_size, **options):
        count = expire_overdue_sessions(now=timezone.now(), batch_size=batch_size, dry_run=dry_run)
        verb = "would expire" if dry_run else "expired"
        self.stdout.write(self.style.SUCCESS(f"{verb} {count} overdue sessions"))
