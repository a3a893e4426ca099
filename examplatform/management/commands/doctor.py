from django.core.management.base import BaseCommand, CommandError

from examplatform.doctor import OFF, diagnose, render


class Command(BaseCommand):
    help = (
        "Print each production-hardening setting as it is live (workers, pools against max_connections, "
        "current connections, Redis timeouts and breaker, exam mode, shared_buffers, audited indexes). "
        "Exits non-zero when one is off. Read-only."
    )

    def handle(self, *args, **options):
        rows = diagnose()
        self.stdout.write(render(rows))
        off = [row.check for row in rows if row.status == OFF]
        if off:
            raise CommandError(f"{len(off)} off: {', '.join(off)}")
        self.stdout.write(self.style.SUCCESS("every hardening setting is on"))
