import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from sessions_app.invariants import Ack, check_invariants, newest_acks
from sessions_app.management.commands import check_exam_invariants as command
from sessions_app.models import ExamSession, SessionAnswer, SessionResult

pytestmark = pytest.mark.django_db


def exam_day(api, bank, *, submit=True) -> tuple[dict, list[dict]]:
    """A timed session answered with seqs (one answer changed, one retried), then submitted; and its acks."""
    session = api.post("/api/v1/sessions/", {"count": 4, "mode": "timed"}, format="json").json()
    url = f"/api/v1/sessions/{session['id']}"
    acks = []
    writes = [(q["id"], "a", 1) for q in session["questions"]]
    first = session["questions"][0]["id"]
    writes += [(first, "b", 2), (first, "b", 2)]  # a change, then the same write retried
    for question, option, seq in writes:
        reply = api.put(f"{url}/answers/{question}/", {"option": option, "seq": seq}, format="json")
        assert reply.status_code == 200
        body = reply.json()
        acks.append({"session": session["id"], "question": body["question"], "option": body["answer"],
                     "seq": body["seq"]})
    if submit:
        assert api.post(f"{url}/submit/").status_code == 200
    return session, acks


def write_acks(tmp_path, acks) -> str:
    path = tmp_path / "acks.jsonl"
    path.write_text("".join(json.dumps(ack) + "\n" for ack in acks))
    return str(path)


def check(**kwargs):
    call_command("check_exam_invariants", **kwargs)


def drop_unique(table: str, column: str) -> None:
    """Drop a unique constraint inside the test's transaction, as a drifted schema would lack it."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks may block the ALTER
        cursor.execute(
            "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid"
            " AND a.attnum = c.conkey[1] WHERE c.conrelid = %s::regclass AND c.contype = 'u' AND a.attname = %s",
            [table, column],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')


def test_it_passes_after_a_clean_exam_day(api, bank, tmp_path, capsys):
    _, acks = exam_day(api, bank)
    check(acks=write_acks(tmp_path, acks))
    assert "all exam invariants hold" in capsys.readouterr().out


def test_it_fails_when_a_session_is_graded_twice(api, bank):
    session, _ = exam_day(api, bank)
    drop_unique(SessionResult._meta.db_table, "session_id")
    stored = SessionResult.objects.get(session_id=session["id"])
    stored.pk = None
    stored.save()
    with pytest.raises(CommandError):
        check()
    assert [v.check for v in check_invariants(now=timezone.now()).violations] == ["session graded more than once"]


def test_it_fails_when_a_status_disagrees_with_the_grade(api, bank):
    graded, _ = exam_day(api, bank)
    closed, _ = exam_day(api, bank, submit=False)
    ExamSession.objects.filter(pk=graded["id"]).update(status="expired")
    ExamSession.objects.filter(pk=closed["id"]).update(status="submitted", submitted_at=timezone.now())
    found = {v.check: v.sample for v in check_invariants(now=timezone.now()).violations}
    assert found == {
        "session status differs from its result": [[graded["id"], "expired", "submitted"]],
        "session closed without a result": [[closed["id"], "submitted"]],
    }


def test_it_fails_on_duplicate_answer_rows(api, bank):
    session, _ = exam_day(api, bank)
    drop_unique(SessionAnswer._meta.db_table, "session_id")
    answer = SessionAnswer.objects.filter(session_id=session["id"]).first()
    answer.pk = None
    answer.save()
    with pytest.raises(CommandError):
        check()
    found = {v.check: v.sample for v in check_invariants(now=timezone.now()).violations}
    assert found == {"duplicate answer rows": [[session["id"], answer.question_id, 2]]}


def test_it_fails_when_an_acknowledged_answer_is_missing_or_older(api, bank, tmp_path):
    session, acks = exam_day(api, bank)
    first, second = session["questions"][0]["id"], session["questions"][1]["id"]
    SessionAnswer.objects.filter(session_id=session["id"], question_id=first).update(chosen_option="a", seq=1)
    SessionAnswer.objects.filter(session_id=session["id"], question_id=second).delete()
    with pytest.raises(CommandError):
        check(acks=write_acks(tmp_path, acks))
    found = {v.check: v.sample for v in check_invariants(now=timezone.now(), acks=[Ack(**a) for a in acks]).violations}
    assert found == {
        "acknowledged answer missing": [[session["id"], second, "a", 1]],
        "acknowledged answer overwritten by an older one": [[session["id"], first, "b", 2, "a", 1]],
    }


def test_a_newer_write_whose_reply_was_lost_is_not_a_loss(api, bank, tmp_path, capsys):
    session, acks = exam_day(api, bank, submit=False)
    question = session["questions"][2]["id"]
    # The client sent seq 5 but timed out before the reply: only seq 1 was acknowledged.
    api.put(f"/api/v1/sessions/{session['id']}/answers/{question}/", {"option": "d", "seq": 5}, format="json")
    check(acks=write_acks(tmp_path, acks))
    assert "all exam invariants hold" in capsys.readouterr().out


def test_the_newest_ack_is_the_highest_seq_whatever_the_order():
    acks = [Ack(1, 2, "c", 3), Ack(1, 2, "a", 1), Ack(1, 2, "c", 3), Ack(1, 3, "b", 2)]
    assert newest_acks(acks) == {(1, 2): Ack(1, 2, "c", 3), (1, 3): Ack(1, 3, "b", 2)}


def test_it_reports_a_session_left_active_past_its_deadline_unless_told_to_expire_it(api, bank, capsys):
    session, _ = exam_day(api, bank, submit=False)
    ExamSession.objects.filter(pk=session["id"]).update(deadline=timezone.now() - timedelta(minutes=5))
    with pytest.raises(CommandError):
        check()
    assert "session active past deadline + grace: 1" in capsys.readouterr().err
    check(expire_overdue=True)
    assert ExamSession.objects.get(pk=session["id"]).status == ExamSession.Status.EXPIRED


def test_a_session_within_its_grace_is_not_overdue(api, bank, capsys):
    session, _ = exam_day(api, bank, submit=False)
    ExamSession.objects.filter(pk=session["id"]).update(deadline=timezone.now() - timedelta(seconds=5))
    check()
    assert "all exam invariants hold" in capsys.readouterr().out


def test_it_refuses_a_missing_ack_log(db, tmp_path):
    with pytest.raises(CommandError, match="no ack log"):
        check(acks=str(tmp_path / "nope.jsonl"))


def test_a_session_falling_due_during_the_expiry_pass_is_left_to_the_next_round(api, bank, monkeypatch, capsys):
    """The pass and the check share one instant: a long pass must not turn its own duration into violations."""
    session, _ = exam_day(api, bank, submit=False)
    deadline = ExamSession.objects.get(pk=session["id"]).deadline
    start = deadline - timedelta(minutes=1)  # not overdue when the pass starts ...
    ticks = iter([start, deadline + timedelta(hours=1)])  # ... long overdue by the time a second clock read
    monkeypatch.setattr(command, "timezone", SimpleNamespace(now=lambda: next(ticks)))
    check(expire_overdue=True)
    assert "expired 0 overdue sessions first" in capsys.readouterr().out
    assert ExamSession.objects.get(pk=session["id"]).status == "active"  # the next round's, not a violation
