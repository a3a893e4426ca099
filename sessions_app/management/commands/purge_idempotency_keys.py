from django.core.management.base import BaseCommand
from django.utils import timezone

from sessions_app.services import purge_idempotency_keys


class Command(BaseCommand):
    help = "Delete Idempotency-Key records older than IDEMPOTENCY_KEY_TTL_HOURS."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, dry_run, **options):
        count = purge_idempotency_keys(now=timezone.now(), dry_run=dry_run)
        self.stdout.write(self.style.SUCCESS(f"{'would purge' if dry_run else 'purged'} {count} idempotency keys"))
