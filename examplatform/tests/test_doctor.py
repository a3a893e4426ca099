"""`manage.py doctor`: each hardening setting as it is live, non-zero exit when one is off."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from examplatform import doctor, redis_client
from examplatform.testing import app_server, free_port


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
