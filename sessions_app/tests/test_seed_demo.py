import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from sessions_app.models import Question

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_creates_load_students(capsys):
    call_command("seed_demo", "--students", "3")
    call_command("seed_demo", "--students", "3")
    assert Question.objects.count() == 320
    users = get_user_model().objects
    assert users.filter(username__startswith="loadstudent").count() == 3
    assert users.get(username="staff").is_staff and not users.get(username="student").is_staff
    assert users.get(username="loadstudent00002").check_password("load-pass")
    assert "Seeded: 0 new questions, 0 new load students." in capsys.readouterr().out
