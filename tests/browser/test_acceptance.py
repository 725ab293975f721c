"""Issue-level acceptance in a real Chromium: an annotator logs in through the form and labels five items
with the keyboard only, and the API shows them; imported markup in an item and in a label name renders
as text and runs nothing. Screenshots of the login, project list and labeling pages are saved."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.browser.conftest import project_with_items, screenshot
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXTS = [
    "The striker scored twice in the final minutes",
    "Parliament passed the budget after a long debate",
    "A new phone chip doubles battery life",
    "The coach praised the young goalkeeper",
    "The senate rejected the new tax proposal",
]
CHOICES = ["1", "2", "3", "1", "2"]  # sports, politics, tech, sports, politics


def test_annotator_logs_in_and_labels_five_items_by_keyboard_only(page: Page, live_server, errors):
    user = make_user("alice", password="alice-Pw-2025")
    project, _ = project_with_items(TEXTS, annotators=[user], name="News")

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    screenshot(page, "login")
    page.keyboard.type("alice")  # the username field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type("alice-Pw-2025")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_contain_text("News")
    screenshot(page, "projects")

    page.goto(f"{live_server.url}/projects/{project.pk}/label")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    for n, key in enumerate(CHOICES):
        expect(page.locator("#text")).to_have_text(TEXTS[n])
        page.keyboard.press(key)
        if n == 0:
            screenshot(page, "label-keyboard")
        page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-outbox", "0")  # every answer acknowledged

    api = APIClient()
    # the project's manager checks (an annotator is blind: no `annotator` filter for alice herself)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=project.created_by).key}")
    rows = api.get(f"/api/projects/{project.pk}/items/", {"annotator": "alice", "page_size": 50}).json()["results"]
    assert len(rows) == 5
    by_text = {}
    for row in rows:
        annotations = api.get(f"/api/items/{row['id']}/annotations").json()
        annotations = annotations["results"] if isinstance(annotations, dict) else annotations
        assert [a["annotator"] for a in annotations] == ["alice"]
        by_text[row["data"]["text"]] = annotations[0]["value"]["label"]
    labels = ["sports", "politics", "tech"]
    assert by_text == {text: labels[int(key) - 1] for text, key in zip(TEXTS, CHOICES, strict=True)}
    assert errors == []


def test_imported_markup_in_text_and_label_names_runs_nothing(page: Page, live_server, logged_in):
    user = make_user()
    text = '<img src=x onerror="window.__x=1">'
    label = "<script>window.__y=1</script>"
    project, _ = project_with_items([text], annotators=[user], labels=[label, "fine"])
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    logged_in(user)
    for path in ("/", f"/projects/{project.pk}/label"):
        page.goto(f"{live_server.url}{path}")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.locator("#text")).to_have_text(text)
    expect(page.locator(".label-btn").first).to_contain_text(label)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    page.wait_for_timeout(300)  # give any injected handler its chance to run
    assert page.evaluate("[typeof window.__x, typeof window.__y]") == ["undefined", "undefined"]
    assert page.locator("img[src='x'], script:not([src]):not([type='application/json'])").count() == 0
    assert dialogs == []
