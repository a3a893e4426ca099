import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from examplatform import exam_mode
from examplatform.auth import verified_tokens
from examplatform.redis_client import breaker
from examplatform.testing import client_for
from sessions_app.tests.factories import QuestionFactory, ThemeFactory, UserFactory


@pytest.fixture(autouse=True)
def _fast_hasher_and_clean_cache(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # No collectstatic before tests: serve static files without the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # A test that broke a Redis in this process may have left the (shared) breaker open.
    breaker.reset()
    cache.clear()
    verified_tokens.clear()
    yield


@pytest.fixture(autouse=True)
def _exam_mode_as_in_a_warm_worker(settings):
    # Each test starts with no run-time exam mode row (as its database has) already loaded, as a warm
    # worker has it: query counts don't depend on when the per-process cache last expired.
    settings.EXAM_MODE_REFRESH_SECONDS = 3600
    exam_mode.preload()
    yield
    exam_mode.forget()


@pytest.fixture
def student(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_student(db):
    return UserFactory(username="bob")


@pytest.fixture
def api(student) -> APIClient:
    return client_for(student)


@pytest.fixture
def other_api(other_student) -> APIClient:
    return client_for(other_student)


@pytest.fixture
def bank(db):
    """Two themes of one block with 10 active questions each, plus one inactive question."""
    first = ThemeFactory(name="Arrhythmias")
    second = ThemeFactory(name="Heart failure", block=first.block)
    questions = QuestionFactory.create_batch(10, theme=first) + QuestionFactory.create_batch(10, theme=second)
    QuestionFactory(theme=first, is_active=False)
    return {"block": first.block, "themes": [first, second], "questions": questions}


@pytest.fixture(params=["one-statement", "read-then-write"])
def answer_write_path(request, monkeypatch):
    """Answers through PostgreSQL's one-statement write and through the portable one the embedded demo uses."""
    if request.param == "read-then-write":
        from sessions_app import answer_sql, services

        monkeypatch.setattr(answer_sql, "check_and_upsert", services._upsert_after_checks)
    return request.param
