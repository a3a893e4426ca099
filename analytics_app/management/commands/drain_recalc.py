from django.core.management.base import BaseCommand
from tqdm import tqdm

from analytics_app.services import drain_pending, pending_count


class Command(BaseCommand):
    help = (
        "Apply the mastery, revision-queue and event work that graded sessions left pending "
        "(exam mode defers it). Idempotent and resumable; copies can run side by side."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only count what is pending")
        parser.add_argument("--batch-size", type=int, default=100)

    def handle(self, *args, dry_run, batch_size, **options):
        pending = pending_count()
        if dry_run:
            self.stdout.write(f"{pending} sessions pending")
            return
        with tqdm(total=pending, unit="session", file=self.stderr, disable=pending == 0) as bar:
            done = drain_pending(batch_size=batch_size, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"applied analytics of {done} sessions; {pending_count()} left"))
