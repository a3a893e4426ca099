from django.core.management.base import BaseCommand

from sessions_app.demo_data import DEMO_STAFF, DEMO_STUDENT, LOAD_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create the demo question bank and logins (idempotent); --students N adds load-test students."

    def add_arguments(self, parser):
        parser.add_argument("--students", type=int, default=0, help="load-test students loadstudent00001..N")

    def handle(self, *args, students, **options):
        report = seed_demo(students=students)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded: {report.questions_created} new questions, {report.students_created} new load students."
            )
        )
        self.stdout.write(f"Demo student: {DEMO_STUDENT[0]} / {DEMO_STUDENT[1]}")
        self.stdout.write(f"Demo staff:   {DEMO_STAFF[0]} / {DEMO_STAFF[1]}")
        if students:
            self.stdout.write(f"Load students: loadstudent00001..{students:05d} / {LOAD_PASSWORD}")
