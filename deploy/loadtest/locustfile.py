"""Students on exam day, for `make loadtest` (deploy/loadtest/run.py drives it).

Each student logs in (or takes a token minted before the run: TOKENS_FILE),
lists the themes, opens a timed session and answers every question with think
time; now and then changes an answer, retries a write as a flaky network would
(same answer, same seq, twice), submits twice; then reads the review. A probe
user polls /health once a second.

Every answer the server acknowledged is appended to ACKS_FILE as a JSON line
for `manage.py check_exam_invariants --acks`. Latencies and statuses of every
request are kept here and written to RAW_FILE at the end: exact percentiles,
and an "all API" figure that leaves the health probe out.
"""

import itertools
import json
import os
import random
import uuid
from collections import Counter, defaultdict

import gevent
from locust import FastHttpUser, between, constant, events, task
from locust.exception import StopUser

THINK = (float(os.environ.get("THINK_MIN", "3")), float(os.environ.get("THINK_MAX", "7")))
QUESTIONS = int(os.environ.get("QUESTIONS", "10"))
PASSWORD = os.environ.get("LOAD_PASSWORD", "load-pass")
TOKENS_FILE = os.environ.get("TOKENS_FILE")
LOGIN_ONLY = os.environ.get("LOGIN_ONLY") == "1"
ACKS_FILE = os.environ.get("ACKS_FILE", "acks.jsonl")
RAW_FILE = os.environ.get("RAW_FILE", "raw.json")
# How often a student does something a flaky client or an unsure student does.
P_CHANGE, P_RETRY, P_DOUBLE_SUBMIT = 0.2, 0.1, 0.3

_student_numbers = itertools.count(1)
_tokens: dict[str, str] = json.load(open(TOKENS_FILE)) if TOKENS_FILE else {}  # noqa: SIM115
_acks = open(ACKS_FILE, "a", buffering=1)  # noqa: SIM115 - one line per ack, kept open for the run
_latencies: dict[str, list[float]] = defaultdict(list)
_statuses: dict[str, Counter] = defaultdict(Counter)


@events.request.add_listener
def _record(request_type, name, response_time, response, exception, **kwargs):
    _latencies[name].append(response_time)
    status = getattr(response, "status_code", 0) if response is not None else 0
    _statuses[name][str(status) if status else type(exception).__name__ if exception else "0"] += 1


@events.test_stop.add_listener
def _dump(**kwargs):
    _acks.flush()
    with open(RAW_FILE, "w") as raw:
        json.dump({"latencies_ms": _latencies, "statuses": _statuses}, raw)


class Student(FastHttpUser):
    wait_time = between(*THINK)
    # A sync worker closes the connection after each reply; don't count that as a failure.
    network_timeout = connection_timeout = 60.0

    def on_start(self):
        self.username = f"loadstudent{next(_student_numbers):05d}"
        token = _tokens.get(self.username) or self._log_in()
        self.headers = {"Authorization": f"Bearer {token}"}
        if LOGIN_ONLY:
            return
        self.wait()
        themes = self.client.get("/api/v1/themes/", headers=self.headers, name="GET /themes/").json()
        self.theme_ids = [theme["id"] for theme in themes]

    def _log_in(self) -> str:
        for _ in range(3):
            reply = self.client.post(
                "/api/v1/auth/token/", json={"username": self.username, "password": PASSWORD},
                name="POST /auth/token/",
            )
            if reply.status_code == 200:
                return reply.json()["access"]
            self.wait()
        raise StopUser()

    @task
    def take_exam(self):
        if LOGIN_ONLY:
            gevent.sleep(3600)
            return
        body = {"themes": random.sample(self.theme_ids, k=min(3, len(self.theme_ids))), "count": QUESTIONS,
                "mode": "timed"}
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
        created = self.client.post("/api/v1/sessions/", json=body, headers=headers, name="POST /sessions/")
        if created.status_code != 201:
            return
        session = created.json()
        url = f"/api/v1/sessions/{session['id']}"
        options = {q["id"]: [o["id"] for o in q["options"]] for q in session["questions"]}
        seq: Counter = Counter()
        for question in session["questions"]:
            self.wait()
            self._answer(url, session["id"], question["id"], random.choice(options[question["id"]]), seq)
            if random.random() < P_CHANGE:
                self.wait()
                self._answer(url, session["id"], question["id"], random.choice(options[question["id"]]), seq)
        self.wait()
        for _ in range(2 if random.random() < P_DOUBLE_SUBMIT else 1):
            self.client.post(f"{url}/submit/", headers=self.headers, name="POST /sessions/[id]/submit/")
        self.wait()
        self.client.get(f"{url}/review/", headers=self.headers, name="GET /sessions/[id]/review/")

    def _answer(self, url: str, session_id: int, question_id: int, option: str, seq: Counter) -> None:
        seq[question_id] += 1
        payload = {"option": option, "seq": seq[question_id]}
        # A flaky network: the same write arrives twice; the second must change nothing.
        for _ in range(2 if random.random() < P_RETRY else 1):
            reply = self.client.put(
                f"{url}/answers/{question_id}/", json=payload, headers=self.headers,
                name="PUT /sessions/[id]/answers/[q]/",
            )
            if reply.status_code == 200:
                stored = reply.json()
                _acks.write(json.dumps(
                    {"session": session_id, "question": stored["question"], "option": stored["answer"],
                     "seq": stored["seq"]}
                ) + "\n")


class HealthProbe(FastHttpUser):
    fixed_count = 1
    wait_time = constant(1)

    @task
    def probe(self):
        self.client.get("/health", name="GET /health")
