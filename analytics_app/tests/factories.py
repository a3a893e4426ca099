from django.utils import timezone

from analytics_app.models import RevisionQueueItem
from sessions_app.tests.factories import QuestionFactory


def revision_items(*, user, count: int, due_in_minutes: int = -1) -> list[RevisionQueueItem]:
    now = timezone.now()
    return RevisionQueueItem.objects.bulk_create(
        RevisionQueueItem(
            user=user, question=QuestionFactory(), due_at=now + timezone.timedelta(minutes=due_in_minutes),
            updated_at=now,
        )
        for _ in range(count)
    )
