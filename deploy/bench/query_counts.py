"""SQL statements per endpoint, through the real URLconf and middleware, on the bench database.

Counted with Django's CaptureQueriesContext in autocommit mode, as the server runs
(BEGIN and COMMIT included), for a new student, so the analytics after a submit
always apply. Submit is counted for sessions of 10, 50 and 200 questions: the
number must not grow. One more appears when the process's exam-mode cache (2 s)
is refreshed on the way.
Prints one JSON object. Usage: python query_counts.py
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examplatform.settings")
os.environ["ALLOWED_HOSTS"] = "testserver"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from examplatform.testing import client_for  # noqa: E402
from sessions_app.bulk_data import ensure_users  # noqa: E402


def counted(client: APIClient, method: str, path: str, body=None) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        send = getattr(client, method)
        reply = send(path, body, format="json") if body is not None else send(path)
    assert reply.status_code < 300, (reply.status_code, reply.content[:300])
    return len(queries), reply


def main() -> dict:
    (user_id,) = ensure_users(count=1, prefix=f"benchq{int(time.time())}-")
    user = get_user_model().objects.get(pk=user_id)
    api: APIClient = client_for(user)
    api.get("/api/v1/themes/")  # the blacklist lookup is cached after the first request, as on the server
    counts: dict[str, int] = {}
    counts["GET /health"], _ = counted(APIClient(), "get", "/health")
    counts["GET /themes/"], _ = counted(api, "get", "/api/v1/themes/")
    submit_by_size = {}
    for size in (10, 50, 200):
        n, reply = counted(api, "post", "/api/v1/sessions/", {"count": size, "mode": "timed"})
        counts.setdefault("POST /sessions/", n)
        session = reply.json()
        url = f"/api/v1/sessions/{session['id']}"
        for seq, question in enumerate(session["questions"], start=1):
            n, _ = counted(api, "put", f"{url}/answers/{question['id']}/", {"option": "a", "seq": seq})
            counts.setdefault("PUT /answers/ (new seq)", n)
        first = session["questions"][0]["id"]
        n, _ = counted(api, "put", f"{url}/answers/{first}/", {"option": "a", "seq": 1})
        counts.setdefault("PUT /answers/ (stale retry)", n)
        counts.setdefault("GET /sessions/[id]/", counted(api, "get", f"{url}/")[0])
        submit_by_size[size], _ = counted(api, "post", f"{url}/submit/")
        counts.setdefault("POST /submit/ (replay)", counted(api, "post", f"{url}/submit/")[0])
        counts.setdefault("GET /review/", counted(api, "get", f"{url}/review/")[0])
    counts["GET /sessions/ (history)"], _ = counted(api, "get", "/api/v1/sessions/")
    return {"endpoints": counts, "submit_by_questions": submit_by_size}


if __name__ == "__main__":
    print(json.dumps(main()))
