from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from analytics_app import rebuilds
from examplatform import exam_mode


class Command(BaseCommand):
    help = (
        "Delete attempt events older than --days (mastery and the revision queue are kept). "
        "Heavy: refused while exam mode is on unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=365, help="keep this many days of events (default 365)")
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
        parser.add_argument("--force", action="store_true", help="run even while exam mode is on")

    def handle(self, *args, days, batch_size, dry_run, force, **options):
        if days < 1:
            raise CommandError("--days must be at least 1")
        before = timezone.now() - timedelta(days=days)
        if dry_run:
            self.stdout.write(f"{rebuilds.old_events(before=before).count()} events older than {days} days")
            return
        exam_mode.refuse_unless_forced(force=force, what="the event purge")
        total = rebuilds.old_events(before=before).count()
        with tqdm(total=total, unit="event", file=self.stderr, disable=total == 0) as bar:
            deleted = rebuilds.purge_events(before=before, batch_size=batch_size, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"deleted {deleted} events older than {days} days"))
