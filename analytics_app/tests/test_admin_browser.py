"""Staff turn exam mode on in a real browser, see the banner and a refused bulk action, turn it off.

Headless Chromium from Debian's `chromium` package (make test installs it), driven by Playwright;
Playwright's own browser downloads are never used.
"""

from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from sessions_app.models import Question
from sessions_app.tests.factories import QuestionFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path("/tmp/exam-mode-browser")


@contextmanager
def chromium_page():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (make test does: `make browser`)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_staff_turn_exam_mode_on_see_the_banner_and_a_refused_bulk_action_then_turn_it_off(live_server):
    UserFactory(username="ops", password="ops-pass-123", is_staff=True, is_superuser=True)
    QuestionFactory.create_batch(2)
    # Hand this thread's connection back to the pool: the live server's thread needs it (a test
    # process's pool is one connection wide, like a sync worker's). The browser's steps touch no ORM here.
    connection.close()
    url = live_server.url
    SCREENSHOTS.mkdir(exist_ok=True)
    with chromium_page() as page:
        try:
            drive_the_admin(page, url)
        finally:
            page.screenshot(path=str(SCREENSHOTS / "last.png"), full_page=True)
    assert not Question.objects.filter(is_active=True).exists()


def drive_the_admin(page, url: str) -> None:

    page.goto(f"{url}/admin/login/?next=/admin/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "ops-pass-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{url}/admin/")
    assert page.locator("#exam-mode-banner").count() == 0

    page.goto(f"{url}/admin/analytics_app/exammodeswitch/")
    page.click("input[value='Turn on']")
    page.wait_for_selector("#exam-mode-banner")
    assert "Exam mode is now on" in page.inner_text(".messagelist")

    page.goto(f"{url}/admin/sessions_app/question/")
    assert page.is_visible("#exam-mode-banner")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "deactivate")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .error")
    assert "bulk actions and imports are paused" in page.inner_text(".messagelist .error")
    page.screenshot(path=str(SCREENSHOTS / "refused.png"), full_page=True)

    page.goto(f"{url}/admin/analytics_app/exammodeswitch/")
    page.click("input[value='Turn off']")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#exam-mode-banner").count() == 0
    assert "Exam mode is now off" in page.inner_text(".messagelist")

    page.goto(f"{url}/admin/sessions_app/question/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "deactivate")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist >> text=Deactivated 2 questions")
    assert page.locator("#exam-mode-banner").count() == 0
