"""`manage.py doctor`: each hardening setting as it is live, non-zero exit when one is off."""

import os
import re
import subprocess
import sys
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection

from examplatform import doctor, redis_client
from examplatform.testing import ROOT, app_server, current_test_database_url, free_port


def live_shared_buffers() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_buffers")
        return cursor.fetchone()[0]


def rows_by_check() -> dict[str, doctor.Row]:
    return {row.check: row for row in doctor.diagnose()}


def server_autovacuum(monkeypatch, value: str) -> None:
    """Answer `SHOW autovacuum` with `value`: a server setting this test can't change on the shared
    PostgreSQL (whose autovacuum is off on some dev machines); every other query goes to the server."""
    real = doctor._scalar
    monkeypatch.setattr(doctor, "_scalar", lambda sql: value if sql == "SHOW autovacuum" else real(sql))


@pytest.fixture(autouse=True)
def _healthy(db, monkeypatch):
    """What a correct deployment looks like here: POSTGRES_SHARED_BUFFERS says what the server runs."""
    monkeypatch.setenv("POSTGRES_SHARED_BUFFERS", live_shared_buffers())
    server_autovacuum(monkeypatch, "on")
    monkeypatch.delenv("GUNICORN_PIDFILE", raising=False)
    redis_client.breaker.reset()
    yield
    redis_client.breaker.reset()


def test_it_prints_every_setting_as_a_table_and_exits_zero_when_all_are_on():
    out = StringIO()
    call_command("doctor", stdout=out)
    text = out.getvalue()
    for label in ("gunicorn workers", "pools vs max_connections", "connections now (pg_stat_activity)",
                  "redis timeouts", "redis breaker", "exam mode", "SHOW shared_buffers", "SHOW autovacuum",
                  *(f"index {name}" for name in doctor.AUDITED_INDEXES)):
        assert label in text
    assert text.splitlines()[0].split() == ["CHECK", "LIVE", "EXPECTED", "STATUS"]
    assert "every hardening setting is on" in text


def test_it_exits_non_zero_when_shared_buffers_are_not_the_configured_size(monkeypatch):
    monkeypatch.setenv("POSTGRES_SHARED_BUFFERS", "7GB")
    with pytest.raises(CommandError, match="shared_buffers"):
        call_command("doctor", stdout=StringIO())


def test_it_exits_non_zero_when_autovacuum_is_off(monkeypatch):
    server_autovacuum(monkeypatch, "off")  # planner statistics would go stale as answers pile up
    assert rows_by_check()["SHOW autovacuum"].live == "off"
    with pytest.raises(CommandError, match="autovacuum"):
        call_command("doctor", stdout=StringIO())


def test_it_exits_non_zero_when_an_audited_index_is_missing():
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX analytics_ae_user_ts_idx")  # rolled back with the test's transaction
    assert rows_by_check()["index analytics_ae_user_ts_idx"].live == "MISSING"
    with pytest.raises(CommandError, match="analytics_ae_user_ts_idx"):
        call_command("doctor", stdout=StringIO())


def test_it_reports_pools_that_outgrow_max_connections(monkeypatch):
    monkeypatch.setenv("UVICORN_WORKERS", "500")
    assert rows_by_check()["pools vs max_connections"].status == doctor.OFF


def test_it_reports_an_open_redis_breaker():
    redis_client.breaker.record_failure(ConnectionError("test"))
    row = rows_by_check()["redis breaker (this process)"]
    assert (row.live, row.status) == ("open", doctor.OFF)


def test_it_reports_an_unreachable_redis(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert rows_by_check()["redis ping"].status == doctor.OFF


def test_it_reports_slow_redis_timeouts(settings):
    settings.REDIS_SOCKET_TIMEOUT = 5.0
    assert rows_by_check()["redis timeouts (socket/connect)"].status == doctor.OFF


def test_it_shows_exam_mode_as_it_is_live(settings):
    settings.EXAM_MODE = True
    from examplatform import exam_mode

    exam_mode.forget()
    assert rows_by_check()["exam mode"].live.startswith("on")
    exam_mode.forget()


@pytest.mark.django_db(transaction=True)
def test_it_counts_the_running_servers_workers(tmp_path, monkeypatch):
    pidfile = tmp_path / "gunicorn.pid"
    with app_server(env={"GUNICORN_PIDFILE": str(pidfile)}, workers=2):
        monkeypatch.setenv("GUNICORN_PIDFILE", str(pidfile))
        monkeypatch.setenv("UVICORN_WORKERS", "2")
        row = rows_by_check()["gunicorn workers"]
        assert row.live.startswith("2 (master") and row.status == doctor.OK
        assert rows_by_check()["redis breaker (server)"].live == "closed"
        monkeypatch.setenv("UVICORN_WORKERS", "3")
        assert rows_by_check()["gunicorn workers"].status == doctor.OFF


def test_it_fails_when_the_configured_pidfile_names_no_server(tmp_path, monkeypatch):
    pidfile = tmp_path / "gunicorn.pid"
    monkeypatch.setenv("GUNICORN_PIDFILE", str(pidfile))
    assert rows_by_check()["gunicorn workers"].status == doctor.OFF  # no file
    other = subprocess.Popen(["sleep", "30"])  # a pidfile left behind, its pid now another program's
    try:
        pidfile.write_text(f"{other.pid}\n")
        row = rows_by_check()["gunicorn workers"]
    finally:
        other.kill()
        other.wait()
    assert (row.live, row.status) == (f"no server behind {pidfile}", doctor.OFF)


def test_it_does_not_look_for_a_server_when_no_pidfile_is_configured():
    assert rows_by_check()["gunicorn workers"].status == doctor.NA  # ops' shell or a test, not the image


@pytest.mark.parametrize(("knob", "value", "status"), [
    ("UVICORN_TIMEOUT_KEEP_ALIVE", "5", doctor.OK),
    ("UVICORN_TIMEOUT_KEEP_ALIVE", "3", doctor.OFF),  # Traefik would reuse connections the app closed
    ("UVICORN_LIMIT_MAX_REQUESTS", "0", doctor.OFF),  # workers never recycled
    ("UVICORN_LIMIT_CONCURRENCY", "0", doctor.OFF),
])
def test_it_checks_the_server_knobs(monkeypatch, knob, value, status):
    monkeypatch.setenv(knob, value)
    assert rows_by_check()["server knobs"].status == status


def test_the_keep_alive_floor_is_the_edges_upstream_idle_timeout():
    static = yaml.safe_load((ROOT / "deploy" / "traefik" / "traefik.yml").read_text())
    idle = static["serversTransport"]["forwardingTimeouts"]["idleConnTimeout"]
    assert idle == f"{doctor.TRAEFIK_UPSTREAM_IDLE_SECONDS}s"


def run_doctor(**env: str) -> tuple[subprocess.CompletedProcess, dict[str, list[str]]]:
    """`manage.py doctor` as ops run it, against this test's database; its rows as {check: [live, expected, status]}."""
    full_env = {**os.environ, "DATABASE_URL": current_test_database_url(), **env}
    result = subprocess.run([sys.executable, "manage.py", "doctor"], cwd=ROOT, env=full_env, capture_output=True,
                            text=True, timeout=120, check=False)
    rows = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()[2:]]
    return result, {row[0]: row[1:] for row in rows if len(row) == 4}


def server_setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_manage_py_doctor_exits_non_zero_exactly_when_a_setting_is_off():
    # Only the server-wide autovacuum can be off here (some dev machines run PostgreSQL without it);
    # the subprocess sees the real value, not the shim above.
    autovacuum = server_setting("autovacuum")
    result, rows = run_doctor()
    assert result.stdout.splitlines()[0].split() == ["CHECK", "LIVE", "EXPECTED", "STATUS"]
    assert rows["SHOW shared_buffers"] == [live_shared_buffers(), f"{live_shared_buffers()} (POSTGRES_SHARED_BUFFERS)",
                                           "ok"]
    assert rows["SHOW autovacuum"][0] == autovacuum
    assert all(rows[f"index {name}"][2] == "ok" for name in doctor.AUDITED_INDEXES)
    off = [check for check, (_, _, status) in rows.items() if status == doctor.OFF]
    if autovacuum == "on":
        assert (result.returncode, off) == (0, []), result.stdout
        assert "every hardening setting is on" in result.stdout
    else:
        assert (result.returncode, off) == (1, ["SHOW autovacuum"]), result.stdout
        assert "1 off: SHOW autovacuum" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_manage_py_doctor_counts_the_workers_of_the_server_beside_it(tmp_path):
    pidfile = str(tmp_path / "gunicorn.pid")
    with app_server(env={"GUNICORN_PIDFILE": pidfile}, workers=2) as srv:
        result, rows = run_doctor(GUNICORN_PIDFILE=pidfile, UVICORN_WORKERS="2")
    assert rows["gunicorn workers"] == [f"2 (master {srv.process.pid})", "2", "ok"], result.stdout
    assert rows["redis breaker (server)"][-1] == "ok"


def test_manage_py_doctor_fails_run_in_a_container_with_no_server(tmp_path):
    result, rows = run_doctor(GUNICORN_PIDFILE=str(tmp_path / "gunicorn.pid"))
    assert result.returncode == 1
    assert rows["gunicorn workers"][-1] == doctor.OFF
    assert "gunicorn workers" in result.stderr
