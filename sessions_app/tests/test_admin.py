import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from sessions_app.models import Block, Question, Theme
from sessions_app.tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/sessions_app/question/import/"
CSV_HEADER = "block,theme,stem,option_a,option_b,option_c,correct,explanation,difficulty,active\n"


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="staffer", is_staff=True, is_superuser=True))
    return client


def upload(client, name: str, content: str):
    return client.post(IMPORT_URL, {"file": SimpleUploadedFile(name, content.encode())})


def test_a_csv_with_good_and_bad_rows_imports_nothing_and_lists_each_bad_row(staff_client):
    content = CSV_HEADER + (
        "Cardio,Arrhythmias,Good one?,A,B,C,b,Because,2,true\n"
        "Cardio,Arrhythmias,,A,B,C,b,,2,true\n"  # no stem
        "Cardio,Arrhythmias,Bad correct?,A,B,C,z,,2,true\n"
        "Cardio,Arrhythmias,One option?,A,,,a,,2,true\n"
        "Cardio,Arrhythmias,Hard?,A,B,C,a,,9,true\n"
        "Cardio,Heart failure,Also good?,A,B,C,c,,,\n"
    )
    response = upload(staff_client, "bank.csv", content)
    assert response.status_code == 400
    errors = response.context["report"].errors
    assert [number for number, _ in errors] == [2, 3, 4, 5]
    assert "missing stem" in errors[0][1] and "correct must be one of" in errors[1][1]
    assert "2 to 6 options" in errors[2][1] and "difficulty must be 1 to 5" in errors[3][1]
    assert b"nothing was imported" in response.content
    assert Question.objects.count() == 0 and Block.objects.count() == 0


def test_a_valid_csv_imports_every_row_with_its_block_and_theme(staff_client):
    content = CSV_HEADER + "Cardio,Arrhythmias,Good one?,A,B,C,b,Because,2,true\nCardio,Valves,Two?,A,B,,a,,,no\n"
    response = upload(staff_client, "bank.csv", content)
    assert response.status_code == 302
    first, second = Question.objects.order_by("id")
    assert first.options == [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}, {"id": "c", "text": "C"}]
    assert (first.correct_option, first.difficulty, first.is_active) == ("b", 2, True)
    assert (second.theme.name, second.is_active, len(second.options)) == ("Valves", False, 2)
    assert Theme.objects.filter(block__name="Cardio").count() == 2


def test_a_json_file_is_imported_the_same_way(staff_client):
    rows = [
        {"block": "Neuro", "theme": "Stroke", "stem": "Q?", "options": ["x", "y"], "correct": "b"},
        {"block": "Neuro", "theme": "Stroke", "stem": "Q2?", "options": "x", "correct": "a"},
    ]
    response = upload(staff_client, "bank.json", json.dumps(rows))
    assert response.status_code == 400
    assert response.context["report"].errors == [(2, "options must be a list")]
    assert upload(staff_client, "bank.json", json.dumps(rows[:1])).status_code == 302
    assert Question.objects.get().correct_option == "b"


def test_unreadable_files_are_refused_with_a_message(staff_client):
    assert b"Upload a .csv or .json file" in upload(staff_client, "bank.txt", "x").content
    assert b"Invalid JSON" in upload(staff_client, "bank.json", "{").content
    assert Question.objects.count() == 0


def test_bulk_actions_activate_and_deactivate_questions(staff_client):
    questions = QuestionFactory.create_batch(3)
    ids = [q.pk for q in questions]
    staff_client.post("/admin/sessions_app/question/", {"action": "deactivate", "_selected_action": ids})
    assert not Question.objects.filter(is_active=True).exists()
    staff_client.post("/admin/sessions_app/question/", {"action": "activate", "_selected_action": ids[:2]})
    assert Question.objects.filter(is_active=True).count() == 2


def test_the_question_form_edits_options_as_fields(staff_client):
    question = QuestionFactory()
    url = f"/admin/sessions_app/question/{question.pk}/change/"
    assert staff_client.get(url).status_code == 200
    data = {
        "block": question.block_id, "theme": question.theme_id, "stem": "Edited?", "correct_option": "c",
        "explanation": "", "difficulty": 4, "is_active": "on",
        "option_a": "One", "option_b": "Two", "option_c": "Three", "option_d": "", "option_e": "", "option_f": "",
    }
    assert staff_client.post(url, data).status_code == 302
    question.refresh_from_db()
    assert question.options[2] == {"id": "c", "text": "Three"} and len(question.options) == 3
    bad = staff_client.post(url, {**data, "correct_option": "d"})
    assert bad.status_code == 200 and b"must be one of the filled-in options" in bad.content


def test_staff_pages_render(staff_client, api, bank):
    session = api.post("/api/v1/sessions/", {"count": 2, "mode": "tutor"}, format="json").json()
    for url in [
        "/admin/", "/admin/sessions_app/question/", "/admin/sessions_app/question/?is_active__exact=1",
        "/admin/sessions_app/examsession/", f"/admin/sessions_app/examsession/{session['id']}/change/",
        "/admin/analytics_app/attemptevent/", IMPORT_URL,
    ]:
        assert staff_client.get(url).status_code == 200, url
