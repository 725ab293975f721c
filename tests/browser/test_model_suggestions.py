"""Acceptance: the labeling page shows the real model's suggestion and highlights its reasons.

The project is pre-labeled by the real all-MiniLM-L6-v2 (zero-shot, in this process with the Celery
tasks run eagerly) and the explanation of the head of the queue is computed by the real occlusion
service; the page then shows both, with no stubs in between.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from config.celery import app
from modelsvc.models import Prediction
from modelsvc.services.prelabel import prelabel_start
from tests.browser.conftest import project_with_items, screenshot
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.ml, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def real_model_eager(settings):
    settings.TANDEM_MODEL_BACKEND = "hf"
    settings.TANDEM_CPU_THREADS = 2
    settings.TANDEM_COLD_START_PICKS = 0
    settings.TANDEM_EXPLAIN_HEAD = 5
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


def test_page_shows_the_real_suggestion_and_its_reasons(page: Page, live_server, logged_in, errors, real_model_eager):
    user = make_user()
    text = "Last night the striker scored twice before half time"
    project, items = project_with_items(
        [text],
        annotators=[user],
        name="Sports or cooking?",
        guidelines="Is the message about **football** or about **cooking**?",
        labels=[
            {"name": "football", "description": "sport, matches, goals, players"},
            {"name": "cooking", "description": "food, recipes, kitchen"},
        ],
    )
    job = prelabel_start(project=project, user=user)  # eager: plan, chunks, then the head's explanations
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    prediction = Prediction.objects.get(item=items[0])
    assert prediction.value == {"label": "football"}
    assert prediction.explanation is not None
    top = max(prediction.explanation["tokens"], key=lambda t: t["weight"])

    page = logged_in(user)
    page.goto(f"{live_server.url}/projects/{project.pk}/label")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    suggestion = page.locator("#suggestion")
    expect(suggestion).to_be_visible()
    expect(suggestion).to_contain_text("football")
    # a zero-shot model: its probability is an uncalibrated score, and it is never pre-selected (issue 13)
    expect(suggestion).to_contain_text("uncalibrated")
    expect(suggestion).to_contain_text("zero-shot")
    expect(suggestion).to_contain_text("not pre-selected")
    expect(page.locator(".label-btn.suggested", has_text="football")).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".label-btn[aria-pressed='true']")).to_have_count(0)
    # the reasons: highlighted words, the strongest one being the word the service weighted highest
    reasons = page.locator(".seg.reason")
    expect(reasons.first).to_be_visible()
    strongest = page.locator(".seg.reason", has_text=top["text"]).first
    assert strongest.evaluate("e => e.style.getPropertyValue('--w')") == "1.000"
    assert page.evaluate("document.getElementById('text').textContent") == text
    screenshot(page, "label")  # docs/screenshots/labeling.png in the README is this one
    assert errors == []
