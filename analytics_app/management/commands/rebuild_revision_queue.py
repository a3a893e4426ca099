from django.core.management.base import BaseCommand
from tqdm import tqdm

from analytics_app import rebuilds
from examplatform import exam_mode


class Command(BaseCommand):
    help = (
        "Rebuild the revision queue by replaying each user's graded sessions through the scheduler "
        "(all users, or --user). Heavy: refused while exam mode is on unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", type=int, action="append", dest="users", help="user id (repeatable)")
        parser.add_argument("--dry-run", action="store_true", help="only count the users it would rebuild")
        parser.add_argument("--force", action="store_true", help="run even while exam mode is on")

    def handle(self, *args, users, dry_run, force, **options):
        user_ids = rebuilds.users_with_sessions(users)
        if dry_run:
            self.stdout.write(f"would rebuild the revision queue of {len(user_ids)} users")
            return
        exam_mode.refuse_unless_forced(force=force, what="the revision-queue rebuild")
        with tqdm(total=len(user_ids), unit="user", file=self.stderr, disable=not user_ids) as bar:
            replayed = rebuilds.rebuild_revision_queue(user_ids=user_ids, progress=bar.update)
        self.stdout.write(
            self.style.SUCCESS(f"rebuilt the revision queue of {len(user_ids)} users from {replayed} sessions")
        )
