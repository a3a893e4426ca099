from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from examplatform import exam_mode
from sessions_app.question_import import ImportFormatError, import_questions, parse_rows


class Command(BaseCommand):
    help = "Import questions from a .csv or .json file; nothing is imported unless every row is valid."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate only")
        parser.add_argument("--force", action="store_true", help="import even while exam mode is on")

    def handle(self, *args, path, dry_run, force, **options):
        if not dry_run:
            exam_mode.refuse_unless_forced(force=force, what="importing questions")
        try:
            rows = parse_rows(content=path.read_bytes(), filename=path.name)
        except (OSError, ImportFormatError) as exc:
            raise CommandError(str(exc)) from exc
        report = import_questions(rows=rows, dry_run=dry_run)
        for number, message in report.errors:
            self.stderr.write(f"row {number}: {message}")
        if not report.ok:
            raise CommandError(f"{len(report.errors)} invalid rows; nothing imported")
        if dry_run:
            self.stdout.write(self.style.SUCCESS(f"{len(rows)} rows valid (dry run, nothing imported)"))
        else:
            self.stdout.write(self.style.SUCCESS(f"imported {report.created} questions"))
