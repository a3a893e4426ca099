from django.core.management.base import BaseCommand
from tqdm import tqdm

from analytics_app.services import drain_pending, pending_count
from examplatform import exam_mode


class Command(BaseCommand):
    help = (
        "Apply the mastery, revision-queue and event work that graded sessions left pending "
        "(exam mode defers it). Idempotent and resumable: each session applies once, in its own "
        "transaction; copies can run side by side. While exam mode is on it waits (exit 0) unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only count what is pending")
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--force", action="store_true", help="apply even while exam mode is on")

    def handle(self, *args, dry_run, batch_size, force, **options):
        pending = pending_count()
        if dry_run:
            self.stdout.write(f"{pending} sessions pending")
            return
        # Pausing is this command's job during an exam, not a failure: cron must not alert on it.
        if not force and exam_mode.is_on():
            self.stdout.write(self.style.WARNING(f"exam mode is on: {pending} sessions wait (--force applies now)"))
            return
        stop = None if force else exam_mode.is_on
        with tqdm(total=pending, unit="session", file=self.stderr, disable=pending == 0) as bar:
            done = drain_pending(batch_size=batch_size, progress=bar.update, should_stop=stop)
        left = pending_count()
        self.stdout.write(self.style.SUCCESS(f"applied analytics of {done} sessions; {left} left"))
        if left and stop and stop():
            self.stdout.write(self.style.WARNING("stopped early: exam mode was turned on"))
