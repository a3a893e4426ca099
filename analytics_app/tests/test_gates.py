"""What exam mode holds back in the admin and in management commands, on and off."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics_app.models import AttemptEvent, ExamModeSwitch
from examplatform import exam_mode
from examplatform.admin_gates import PausedBulkActionsMixin
from sessions_app.models import ExamSession, Question
from sessions_app.tests.factories import ExamSessionFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

REFUSED = b"Exam mode is on: bulk actions and imports are paused"
BANNER = b'id="exam-mode-banner"'
EXAM_MODE_PAGE = "/admin/analytics_app/exammodeswitch/"


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="staffer", is_staff=True, is_superuser=True))
    return client


def on():
    exam_mode.turn_on(by="test", now=timezone.now())


def test_every_admin_page_shows_a_banner_while_exam_mode_is_on(staff_client, client):
    pages = ["/admin/", "/admin/sessions_app/question/", "/admin/sessions_app/question/import/", EXAM_MODE_PAGE]
    assert not any(BANNER in staff_client.get(url).content for url in pages)
    exam_mode.turn_on(by="test", now=timezone.now(), until=timezone.now() + timedelta(hours=2))
    for url in pages:
        page = staff_client.get(url, follow=True).content
        assert BANNER in page and b"Exam mode is on until" in page, url


@pytest.mark.parametrize(("action", "before"), [("deactivate", True), ("activate", False)])
def test_question_bulk_actions_refuse_in_exam_mode_and_work_after(staff_client, action, before):
    ids = [q.pk for q in QuestionFactory.create_batch(3, is_active=before)]
    on()
    response = staff_client.post("/admin/sessions_app/question/", {"action": action, "_selected_action": ids},
                                 follow=True)
    assert REFUSED in response.content
    assert Question.objects.filter(is_active=before).count() == 3
    exam_mode.turn_off(by="test", now=timezone.now())
    staff_client.post("/admin/sessions_app/question/", {"action": action, "_selected_action": ids})
    assert Question.objects.filter(is_active=before).count() == 0


def test_delete_selected_refuses_in_exam_mode(staff_client):
    ids = [q.pk for q in QuestionFactory.create_batch(2)]
    on()
    data = {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    assert REFUSED in staff_client.post("/admin/sessions_app/question/", data, follow=True).content
    assert Question.objects.count() == 2
    exam_mode.turn_off(by="test", now=timezone.now())
    staff_client.post("/admin/sessions_app/question/", data)
    assert Question.objects.count() == 0


def test_every_registered_admin_has_the_gate_libraries_included():
    gated = {model._meta.label: isinstance(model_admin, PausedBulkActionsMixin)
             for model, model_admin in admin.site._registry.items()}
    assert {"auth.User", "auth.Group", "token_blacklist.BlacklistedToken"} <= set(gated)
    assert all(gated.values()), [label for label, ok in gated.items() if not ok]


def test_a_library_admin_bulk_delete_refuses_in_exam_mode(staff_client):
    users = UserFactory.create_batch(2)
    on()
    data = {"action": "delete_selected", "_selected_action": [u.pk for u in users], "post": "yes"}
    assert REFUSED in staff_client.post("/admin/auth/user/", data, follow=True).content
    assert User.objects.filter(pk__in=[u.pk for u in users]).count() == 2


def test_the_session_expire_action_refuses_in_exam_mode_and_works_after(staff_client):
    overdue = ExamSessionFactory(
        mode="timed", created_at=timezone.now() - timedelta(hours=2), deadline=timezone.now() - timedelta(hours=1)
    )
    url, data = "/admin/sessions_app/examsession/", {"action": "expire_overdue", "_selected_action": [overdue.pk]}
    on()
    assert REFUSED in staff_client.post(url, data, follow=True).content
    overdue.refresh_from_db()
    assert overdue.status == ExamSession.Status.ACTIVE
    exam_mode.turn_off(by="test", now=timezone.now())
    assert b"Closed 1 overdue sessions" in staff_client.post(url, data, follow=True).content
    overdue.refresh_from_db()
    assert overdue.status == ExamSession.Status.EXPIRED


def test_the_question_import_refuses_in_exam_mode(staff_client):
    csv = "block,theme,stem,option_a,option_b,correct\nCardio,Valves,Q?,A,B,a\n"
    on()
    response = staff_client.post(
        "/admin/sessions_app/question/import/", {"file": SimpleUploadedFile("q.csv", csv.encode())}, follow=True
    )
    assert REFUSED in response.content and response.redirect_chain[-1][0] == "/admin/sessions_app/question/"
    assert REFUSED in staff_client.get("/admin/sessions_app/question/import/", follow=True).content
    assert Question.objects.count() == 0
    exam_mode.turn_off(by="test", now=timezone.now())
    staff_client.post("/admin/sessions_app/question/import/", {"file": SimpleUploadedFile("q.csv", csv.encode())})
    assert Question.objects.count() == 1


def test_single_objects_can_still_be_edited_in_exam_mode(staff_client):
    question = QuestionFactory()
    on()
    assert staff_client.get(f"/admin/sessions_app/question/{question.pk}/change/").status_code == 200


def test_the_exam_mode_page_turns_it_on_with_an_end_time_and_off(staff_client):
    page = staff_client.get(EXAM_MODE_PAGE)
    assert b"Exam mode is <strong>off</strong>" in page.content
    until = (timezone.localtime() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    response = staff_client.post(EXAM_MODE_PAGE, {"action": "Turn on", "until": until}, follow=True)
    assert b"Exam mode is now on until" in response.content and BANNER in response.content
    row = ExamModeSwitch.objects.get()
    assert row.enabled and row.changed_by == "admin (staffer)" and row.until is not None
    response = staff_client.post(EXAM_MODE_PAGE, {"action": "Turn off"}, follow=True)
    assert b"Exam mode is now off" in response.content and BANNER not in response.content
    assert exam_mode.is_on() is False
    staff_client.post(EXAM_MODE_PAGE, {"action": "Follow EXAM_MODE from the environment"})
    assert ExamModeSwitch.objects.get().enabled is None


def test_the_exam_mode_page_refuses_an_end_time_in_the_past(staff_client):
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = staff_client.post(EXAM_MODE_PAGE, {"action": "Turn on", "until": past})
    assert response.status_code == 200 and b"Pick a time in the future" in response.content
    assert not ExamModeSwitch.objects.exists()


def test_the_exam_mode_page_is_read_only_without_the_change_permission(client):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_exammodeswitch"))
    client.force_login(viewer)
    assert b'id="exam-mode-form"' not in client.get(EXAM_MODE_PAGE).content
    client.post(EXAM_MODE_PAGE, {"action": "Turn on"})
    assert exam_mode.is_on() is False
    client.force_login(UserFactory(username="nobody", is_staff=True))
    assert client.get(EXAM_MODE_PAGE).status_code == 302


HEAVY_COMMANDS = [
    ("recalculate_mastery", []),
    ("rebuild_revision_queue", []),
    ("purge_attempt_events", []),
]


@pytest.mark.parametrize(("command", "args"), HEAVY_COMMANDS)
def test_heavy_commands_refuse_in_exam_mode_unless_forced(command, args):
    on()
    with pytest.raises(CommandError, match=r"exam mode is on: .* \(pass --force"):
        call_command(command, *args, stdout=StringIO(), stderr=StringIO())
    call_command(command, *args, "--force", stdout=StringIO(), stderr=StringIO())
    exam_mode.turn_off(by="test", now=timezone.now())
    call_command(command, *args, stdout=StringIO(), stderr=StringIO())


def test_import_questions_refuses_in_exam_mode_unless_forced(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("block,theme,stem,option_a,option_b,correct\nCardio,Valves,Q?,A,B,a\n")
    on()
    with pytest.raises(CommandError, match="exam mode is on: importing questions"):
        call_command("import_questions", str(path), stdout=StringIO())
    call_command("import_questions", str(path), "--dry-run", stdout=StringIO())  # validating is light
    assert Question.objects.count() == 0
    call_command("import_questions", str(path), "--force", stdout=StringIO())
    assert Question.objects.count() == 1
    exam_mode.turn_off(by="test", now=timezone.now())
    path.write_text("block,theme,stem,option_a,option_b,correct\nCardio,Valves,Q2?,A,B,b\n")
    call_command("import_questions", str(path), stdout=StringIO())  # off: no --force needed
    assert Question.objects.count() == 2


def test_purge_deletes_only_events_older_than_the_window():
    session = ExamSessionFactory()
    old = timezone.now() - timedelta(days=400)
    AttemptEvent.objects.bulk_create(
        AttemptEvent(user=session.user, session=session, question=QuestionFactory(), event_type="answered",
                     event_ts=old if i < 3 else timezone.now())
        for i in range(5)
    )
    out = StringIO()
    call_command("purge_attempt_events", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "3 events older than 365 days"
    call_command("purge_attempt_events", "--batch-size", "2", stdout=out, stderr=StringIO())
    assert AttemptEvent.objects.count() == 2 and "deleted 3 events" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("purge_attempt_events", "--days", "0")
