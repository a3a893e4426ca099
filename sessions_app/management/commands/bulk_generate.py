from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from sessions_app import bulk_data


class Command(BaseCommand):
    help = (
        "Add N graded timed sessions with their questions and answers (default 1M sessions, 10M answers) "
        "for benchmarks, generated inside PostgreSQL in batches. Run it on a benchmark database while idle."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sessions", type=int, default=1_000_000)
        parser.add_argument("--questions-per-session", type=int, default=10, help="= answers per session")
        parser.add_argument("--users", type=int, default=20_000, help="students benchuser000001..N to spread over")
        parser.add_argument("--batch-size", type=int, default=20_000)

    def handle(self, *args, sessions, questions_per_session, users, batch_size, **options):
        if sessions < 1 or users < 1:
            raise CommandError("--sessions and --users must be positive")
        user_ids = bulk_data.ensure_users(count=users)
        with tqdm(total=sessions, unit="session", file=self.stdout, mininterval=2) as bar:
            try:
                made = bulk_data.generate_sessions(
                    user_ids=user_ids, sessions=sessions, now=timezone.now(),
                    questions_per_session=questions_per_session, batch_size=batch_size, progress=bar.update,
                )
            except ValueError as error:
                raise CommandError(str(error)) from error
        bulk_data.analyze()
        self.stdout.write(self.style.SUCCESS(
            f"added sessions {made.first_id}..{made.last_id} ({sessions} sessions, "
            f"{sessions * questions_per_session} answers) over {len(user_ids)} users"
        ))
