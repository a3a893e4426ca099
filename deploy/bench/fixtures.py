"""Request lists for `make bench`, one file per endpoint (see requests.lua), on the bench database.

Sessions are generated in bulk (sessions_app.bulk_data) for the load students,
whose tokens are minted here as if they had logged in:
- answer / ceiling: one open timed session per student and run, every (session, question) pair;
- submit: SUBMITS open sessions with every question answered, each submitted once, by a pool of 2000 users;
- review: one graded session per student;  create: 300 users of their own (history grows ~1 session a run).
Usage: python fixtures.py OUT_DIR STUDENTS SUBMITS RUNS
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examplatform.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.utils import timezone  # noqa: E402

from examplatform.auth import RefreshToken  # noqa: E402
from sessions_app import bulk_data  # noqa: E402
from sessions_app.models import ExamSession, SessionQuestion  # noqa: E402

DAY = 24 * 3600
SUBMIT_USERS = 2000
CREATE_USERS = 300


def lines(rows) -> str:
    return "".join("\t".join(map(str, row)) + "\n" for row in rows)


def main(out: Path, students: int, submits: int, runs: int) -> None:
    users = list(get_user_model().objects.filter(username__startswith="loadstudent").order_by("username")[:students])
    token = {user.pk: str(RefreshToken.for_user(user).access_token) for user in users}
    ids = [user.pk for user in users]
    now = timezone.now()

    def pairs(made) -> list[tuple[int, int, int]]:
        owner = dict(ExamSession.objects.filter(pk__in=made.session_ids).values_list("id", "user_id"))
        rows = SessionQuestion.objects.filter(session_id__in=made.session_ids).order_by("position", "session_id")
        return [(s, q, owner[s]) for s, q in rows.values_list("session_id", "question_id")]

    # A fresh set of open sessions per run: each wrk run's seq counter starts again at 1.
    for run in range(runs):
        open_ = bulk_data.generate_sessions(user_ids=ids, sessions=len(ids), now=now, closed=False, answered=False,
                                            time_limit_seconds=DAY)
        answerable = pairs(open_)
        (out / f"answer-{run}.tsv").write_text(lines(
            ("PUT", f"/api/v1/sessions/{s}/answers/{q}/", token[u], '{"option":"a","seq":{seq}}')
            for s, q, u in answerable
        ))
    (out / "ceiling.tsv").write_text(lines(
        ("PUT", f"/test/bench/upsert/{s}/{q}/", "-", '{"option":"a"}') for s, q, _ in answerable
    ))
    # Submits are spread over a pool of their own, so the load students keep a short history.
    pool = bulk_data.ensure_users(count=SUBMIT_USERS, prefix="benchsubmit")
    token.update({user.pk: str(RefreshToken.for_user(user).access_token)
                  for user in get_user_model().objects.filter(pk__in=pool)})
    full = bulk_data.generate_sessions(user_ids=pool, sessions=submits, now=now, closed=False, time_limit_seconds=DAY)
    owner = dict(ExamSession.objects.filter(pk__in=full.session_ids).values_list("id", "user_id"))
    (out / "submit.tsv").write_text(lines(
        ("POST", f"/api/v1/sessions/{s}/submit/", token[owner[s]], "-") for s in full.session_ids
    ))
    graded = bulk_data.generate_sessions(user_ids=ids, sessions=len(ids), now=now, closed=True)
    owner = dict(ExamSession.objects.filter(pk__in=graded.session_ids).values_list("id", "user_id"))
    (out / "review.tsv").write_text(lines(
        ("GET", f"/api/v1/sessions/{s}/review/", token[owner[s]], "-") for s in graded.session_ids
    ))
    # Creates by students with a typical history: drawing looks at every earlier answer of the student.
    fresh = bulk_data.ensure_users(count=CREATE_USERS, prefix="benchcreate")
    creators = get_user_model().objects.filter(pk__in=fresh)
    (out / "create.tsv").write_text(lines(
        ("POST", "/api/v1/sessions/", str(RefreshToken.for_user(user).access_token), '{"count":10,"mode":"timed"}')
        for user in creators
    ))
    (out / "health.tsv").write_text("GET\t/health\t-\t-\n")
    (out / "fixtures.json").write_text(json.dumps({"students": len(ids), "submits": submits,
                                                   "answer_pairs": len(answerable)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
