from django.core.management.base import BaseCommand
from tqdm import tqdm

from analytics_app import rebuilds
from examplatform import exam_mode


class Command(BaseCommand):
    help = (
        "Recompute theme mastery from the graded sessions (all users, or --user). Heavy: refused while "
        "exam mode is on unless --force. Sessions still pending are left to drain_recalc."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", type=int, action="append", dest="users", help="user id (repeatable)")
        parser.add_argument("--batch-size", type=int, default=200)
        parser.add_argument("--dry-run", action="store_true", help="only count the users it would recompute")
        parser.add_argument("--force", action="store_true", help="run even while exam mode is on")

    def handle(self, *args, users, batch_size, dry_run, force, **options):
        user_ids = rebuilds.users_with_sessions(users)
        if dry_run:
            self.stdout.write(f"would recompute the mastery of {len(user_ids)} users")
            return
        exam_mode.refuse_unless_forced(force=force, what="mastery recalculation")
        with tqdm(total=len(user_ids), unit="user", file=self.stderr, disable=not user_ids) as bar:
            rows = rebuilds.recalculate_mastery(user_ids=user_ids, batch_size=batch_size, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"recomputed {rows} mastery rows of {len(user_ids)} users"))
