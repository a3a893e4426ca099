"""Attempt events are the analytics' source of truth: the admin shows them and changes none."""

import pytest

from analytics_app.models import AttemptEvent
from analytics_app.tests.scenario import sit_session
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory

pytestmark = pytest.mark.django_db

EVENTS = "/admin/analytics_app/attemptevent/"


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="staffer", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def events(django_capture_on_commit_callbacks):
    theme = ThemeFactory()
    QuestionFactory.create_batch(5, theme=theme)
    sit_session(user=UserFactory(), theme_ids=[theme.pk], count=5, day=0, pattern=0,
                run_on_commit=django_capture_on_commit_callbacks)
    return list(AttemptEvent.objects.order_by("pk").values())


def test_attempt_events_can_be_viewed_but_not_added_changed_or_deleted(staff_client, events):
    event = events[0]
    page = staff_client.get(f"{EVENTS}{event['id']}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert staff_client.get(f"{EVENTS}add/").status_code == 403
    assert staff_client.post(f"{EVENTS}add/", {"event_type": "answered"}).status_code == 403
    assert staff_client.post(f"{EVENTS}{event['id']}/change/", {"event_type": "submitted"}).status_code == 403
    assert staff_client.get(f"{EVENTS}{event['id']}/delete/").status_code == 403
    assert staff_client.post(f"{EVENTS}{event['id']}/delete/", {"post": "yes"}).status_code == 403
    assert list(AttemptEvent.objects.order_by("pk").values()) == events


def test_the_event_list_offers_no_bulk_delete_and_a_forged_one_changes_nothing(staff_client, events):
    assert b'value="delete_selected"' not in staff_client.get(EVENTS).content
    ids = [event["id"] for event in events]
    staff_client.post(EVENTS, {"action": "delete_selected", "_selected_action": ids, "index": 0})
    staff_client.post(EVENTS, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert list(AttemptEvent.objects.order_by("pk").values()) == events
