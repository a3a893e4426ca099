"""GET /api/v1/revision-queue/: what is due for me now, nothing of anyone else's, nothing retired."""

import pytest

from analytics_app.models import RevisionQueueItem
from analytics_app.tests.factories import revision_items

pytestmark = pytest.mark.django_db

QUEUE = "/api/v1/revision-queue/"


def test_with_no_parameters_it_lists_only_my_active_items_already_due(api, student, other_student):
    (due,) = revision_items(user=student, count=1, due_in_minutes=-5)
    revision_items(user=student, count=1, due_in_minutes=60)
    revision_items(user=other_student, count=1, due_in_minutes=-5)
    (retired,) = revision_items(user=student, count=1, due_in_minutes=-10)
    RevisionQueueItem.objects.filter(pk=retired.pk).update(status=RevisionQueueItem.Status.RETIRED)

    body = api.get(QUEUE).json()

    assert body["count"] == 1
    assert [(item["id"], item["question"]) for item in body["results"]] == [(due.pk, due.question_id)]


def test_a_horizon_adds_my_items_due_within_it_soonest_first(api, student, other_student):
    (due,) = revision_items(user=student, count=1, due_in_minutes=-5)
    (soon,) = revision_items(user=student, count=1, due_in_minutes=60)
    revision_items(user=student, count=1, due_in_minutes=3 * 60)
    revision_items(user=other_student, count=1, due_in_minutes=30)

    body = api.get(QUEUE, {"horizon_hours": 2}).json()

    assert [item["id"] for item in body["results"]] == [due.pk, soon.pk]
