import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analytics_app.tests.scenario import sit_session
from sessions_app.models import (
    Block,
    ExamSession,
    Question,
    SessionAnswer,
    SessionQuestion,
    SessionResult,
    Theme,
)
from sessions_app.tests.factories import BlockFactory, QuestionFactory, ThemeFactory, UserFactory

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
        f"{'B' * 121},Arrhythmias,Long block?,A,B,C,a,,2,true\n"
        "Cardio,Arrhythmias,Gap then C?,A,,C,b,,2,true\n"  # b is the blank column: not an option
    )
    response = upload(staff_client, "bank.csv", content)
    assert response.status_code == 400
    errors = response.context["report"].errors
    assert [number for number, _ in errors] == [2, 3, 4, 5, 7, 8]
    assert "missing stem" in errors[0][1] and "correct must be one of" in errors[1][1]
    assert "2 to 6 options" in errors[2][1] and "difficulty must be 1 to 5" in errors[3][1]
    assert errors[4][1] == "block name longer than 120 characters"
    assert errors[5][1] == "correct must be one of a, c, got 'b'"
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


def test_options_keep_their_columns_letter_when_one_is_left_blank(staff_client):
    content = "block,theme,stem,option_a,option_b,option_c,option_d,correct\nCardio,Valves,Which is C?,A,,C,D,c\n"
    assert upload(staff_client, "bank.csv", content).status_code == 302
    question = Question.objects.get()
    assert question.options == [{"id": "a", "text": "A"}, {"id": "c", "text": "C"}, {"id": "d", "text": "D"}]
    assert question.correct_option == "c"  # the column the author marked, as the admin's form would store it


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


@pytest.fixture
def two_blocks(db):
    """Questions across two blocks and three themes, one of them withdrawn, with telling stems."""
    cardio, neuro = BlockFactory(name="Cardio"), BlockFactory(name="Neuro")
    rhythm, valves, stroke = ThemeFactory(block=cardio), ThemeFactory(block=cardio), ThemeFactory(block=neuro)
    return {
        "af": QuestionFactory(theme=rhythm, stem="Atrial fibrillation with fast ventricular rate?"),
        "flutter": QuestionFactory(theme=rhythm, stem="Flutter waves?", explanation="Sawtooth atrial waves.",
                                   is_active=False),
        "stenosis": QuestionFactory(theme=valves, stem="Aortic stenosis murmur?"),
        "stroke": QuestionFactory(theme=stroke, stem="Stroke with atrial fibrillation: anticoagulate when?"),
        "cardio": cardio, "neuro": neuro, "rhythm": rhythm, "valves": valves,
    }


def listed(client, query: dict) -> set[str]:
    response = client.get("/admin/sessions_app/question/", query)
    assert response.status_code == 200
    return {question.stem for question in response.context["cl"].result_list}


def stems(bank: dict, *names: str) -> set[str]:
    return {bank[name].stem for name in names}


def test_the_question_list_search_finds_words_of_the_stem_or_the_explanation(staff_client, two_blocks):
    assert listed(staff_client, {"q": "fibrillation"}) == stems(two_blocks, "af", "stroke")
    assert listed(staff_client, {"q": "sawtooth"}) == stems(two_blocks, "flutter")
    assert listed(staff_client, {"q": "no such words"}) == set()


def test_the_question_list_filters_by_block_theme_and_active(staff_client, two_blocks):
    assert listed(staff_client, {"block__id__exact": two_blocks["cardio"].pk}) == stems(
        two_blocks, "af", "flutter", "stenosis")
    assert listed(staff_client, {"block__id__exact": two_blocks["neuro"].pk}) == stems(two_blocks, "stroke")
    assert listed(staff_client, {"theme__id__exact": two_blocks["valves"].pk}) == stems(two_blocks, "stenosis")
    assert listed(staff_client, {"is_active__exact": "0"}) == stems(two_blocks, "flutter")
    assert listed(staff_client, {"is_active__exact": "1", "theme__id__exact": two_blocks["rhythm"].pk}) == stems(
        two_blocks, "af")
    assert listed(staff_client, {"q": "fibrillation", "block__id__exact": two_blocks["neuro"].pk}) == stems(
        two_blocks, "stroke")


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


@pytest.fixture
def graded(student, bank, django_capture_on_commit_callbacks):
    """A submitted session with answers, a result and its attempt events."""
    session_id = sit_session(user=student, theme_ids=[bank["themes"][0].pk], count=5, day=0, pattern=0,
                             run_on_commit=django_capture_on_commit_callbacks)
    return ExamSession.objects.get(pk=session_id)


def session_record(session: ExamSession) -> tuple:
    """Everything the admin could have changed about a session."""
    session = ExamSession.objects.get(pk=session.pk)
    answers = list(SessionAnswer.objects.filter(session=session).order_by("question_id").values_list(
        "question_id", "chosen_option", "is_correct", "flagged", "seq"))
    questions = list(SessionQuestion.objects.filter(session=session).values_list("question_id", "position"))
    result = SessionResult.objects.filter(session=session).values_list("status", "correct", "answered").get()
    return session.status, session.score, session.submitted_at, answers, questions, result


def test_a_session_and_its_answers_can_be_viewed_but_not_added_changed_or_deleted(staff_client, graded):
    before = session_record(graded)
    assert SessionAnswer.objects.filter(session=graded).exists()
    base = "/admin/sessions_app/examsession/"

    page = staff_client.get(f"{base}{graded.pk}/change/")
    assert page.status_code == 200 and b"Session answers" in page.content  # the answers, shown read-only
    assert b'name="_save"' not in page.content and b"/delete/" not in page.content
    assert b'name="answers-0-DELETE"' not in page.content

    assert staff_client.get(f"{base}add/").status_code == 403
    assert staff_client.post(f"{base}add/", {"status": "active"}).status_code == 403
    assert staff_client.post(f"{base}{graded.pk}/change/", {
        "status": "active", "score": "100", "answers-TOTAL_FORMS": "1", "answers-INITIAL_FORMS": "1",
        "answers-0-id": SessionAnswer.objects.filter(session=graded).first().pk, "answers-0-DELETE": "on",
    }).status_code == 403
    assert staff_client.get(f"{base}{graded.pk}/delete/").status_code == 403
    assert staff_client.post(f"{base}{graded.pk}/delete/", {"post": "yes"}).status_code == 403
    assert session_record(graded) == before


def test_the_session_list_offers_only_the_expire_action_and_a_forged_bulk_delete_changes_nothing(
    staff_client, graded
):
    before = session_record(graded)
    base = "/admin/sessions_app/examsession/"
    listing = staff_client.get(base)
    assert b'value="expire_overdue"' in listing.content
    assert b'value="delete_selected"' not in listing.content
    for data in [
        {"action": "delete_selected", "_selected_action": [graded.pk], "index": 0},
        {"action": "delete_selected", "_selected_action": [graded.pk], "post": "yes"},
    ]:
        assert staff_client.post(base, data).status_code in (200, 302)
    assert session_record(graded) == before
