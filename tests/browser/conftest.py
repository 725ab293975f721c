"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live_server.

- ``playwright install`` cannot download its browser here, so Chromium is ``/usr/bin/chromium``
  (``scripts/test.sh`` installs it); the tests skip, saying so, only when it is truly absent.
- Playwright's sync API runs an event loop in the test thread, so Django's ORM calls from the test
  body need ``DJANGO_ALLOW_ASYNC_UNSAFE``; the live server runs in its own thread against the same
  (transactional) test database.
- ``logged_in(user)`` puts a real session cookie for ``user`` into the page's browser context.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from annotation.models import Item, Project
from tests.conftest import add_member, make_project, make_user

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# generous waits: these run on small shared CI machines; nothing here asserts on speed
expect.set_options(timeout=15_000)

# screenshots of every page, kept as test artifacts (CI can upload the folder)
ARTIFACTS = Path(os.environ.get("TANDEM_TEST_ARTIFACTS", "var/test-artifacts"))

CHROMIUM = os.environ.get("TANDEM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, pointed at the system Chromium."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (scripts/test.sh does)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def errors(page) -> Iterator[list[str]]:
    """Console errors and uncaught page errors (CSP violations show up here); tests assert it stays empty."""
    found: list[str] = []
    page.on("pageerror", lambda exc: found.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: found.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    yield found
    # the page's requests in flight (a prefetch, a poll) finish before the test's database is flushed, and then the
    # page stops its timers: a live-server request still reading while the flush's TRUNCATE takes its locks can
    # deadlock with it (seen once in CI, in the teardown of a labeling test)
    with suppress(Exception):
        page.wait_for_load_state("networkidle", timeout=3000)
    with suppress(Exception):
        page.goto("about:blank")


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``$TANDEM_TEST_ARTIFACTS/<name>.png`` (default var/test-artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def logged_in(page, live_server) -> Callable[[Any], Any]:
    """``logged_in(user)``: the page's context carries a session for ``user``; returns the page."""

    def login(user: Any) -> Any:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        page.context.clear_cookies()
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
        return page

    return login


def project_with_items(
    texts: Iterable[str | dict[str, Any]],
    *,
    owner: Any = None,
    annotators: Iterable[Any] = (),
    task_type: str = "classification",
    labels: Iterable[Any] = ("sports", "politics", "tech"),
    predictions: dict[int, dict[str, Any]] | None = None,
    **fields: Any,
) -> tuple[Project, list[Item]]:
    """A project with one item per text (a str, or a dict of item data with "text"), in import order.

    ``predictions`` maps an item's index to its ``prediction`` (the suggestion shape of docs/api.md).
    Sampling is sequential, so ``next`` serves the items in the order given.
    """
    owner = owner or make_user()
    project = make_project(
        owner, labels=list(labels), task_type=task_type, sampling="sequential", exploration_rate=0, **fields
    )
    for user in annotators:
        add_member(project, user, "annotator")
    items = []
    for i, text in enumerate(texts):
        data = {"text": text} if isinstance(text, str) else dict(text)
        pred = (predictions or {}).get(i)
        items.append(
            Item.objects.create(
                project=project,
                external_id=f"x{i}",
                data=data,
                prediction=pred,
                uncertainty=(pred or {}).get("uncertainty"),
            )
        )
    return project, items


@pytest.fixture
def annotator_user(transactional_db) -> Any:
    return make_user("expert")
