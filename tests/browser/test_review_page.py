"""The review page in a real Chromium: keyboard-only verdicts against the live server and REST API."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Annotation, FinalLabel, Item, Review
from annotation.services.reviewing import review_submit
from annotation.services.submitting import annotation_submit
from tests.browser.conftest import project_with_items, screenshot
from tests.conftest import add_member, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def annotated(project, item, *values) -> list[Annotation]:
    """Each value submitted by a new annotator through the submit service (the item decides itself at k)."""
    out = []
    for value in values:
        user = make_user()
        add_member(project, user, "annotator")
        out.append(annotation_submit(item_id=item.pk, user=user, value=value).annotation)
    return out


def reviewer_for(project):
    user = make_user()
    add_member(project, user, "reviewer")
    return user


def open_review(page: Page, live_server, project) -> Page:
    page.goto(f"{live_server.url}/projects/{project.pk}/review")
    expect(page.locator("#review-loading")).to_be_hidden()
    return page


def test_keyboard_review_of_a_disagreement_writes_the_final_label(page: Page, live_server, logged_in, errors):
    suggestion = {
        "model_version": 1,
        "value": {"label": "sports"},
        "probabilities": {"sports": 0.55, "politics": 0.4, "tech": 0.05},
        "uncertainty": 0.15,
        "scores": {"least_confidence": 0.45, "margin": 0.85, "entropy": 0.85},
    }
    project, (tie, agreed) = project_with_items(
        ["the match was close", "budget vote today"], annotations_per_item=2, predictions={0: suggestion}
    )
    project.review_policy = "all"
    project.save(update_fields=["review_policy"])
    annotated(project, agreed, {"label": "politics"}, {"label": "politics"})
    a, b = annotated(project, tie, {"label": "sports"}, {"label": "politics"})
    assert {Item.objects.get(pk=i.pk).status for i in (tie, agreed)} == {"in_review"}
    reviewer = reviewer_for(project)
    open_review(logged_in(reviewer), live_server, project)

    # the disagreement comes first, both annotations side by side, the minority highlighted
    expect(page.locator("#review-text")).to_have_text("the match was close")
    expect(page.locator("#review-disagreement")).to_be_visible()
    expect(page.locator("#review-waiting")).to_have_text("2 items awaiting review")
    cards = page.locator(".ann-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text(a.annotator.username)
    expect(cards.nth(0)).to_contain_text("sports")
    expect(cards.nth(1)).to_contain_text("politics")
    expect(cards.nth(0)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#review-suggestion")).to_have_text("Model suggestion: sports (uncertainty 0.15).")
    expect(page.locator("#review-lease")).to_contain_text("Held for you until")
    expect(page.locator("#review-adjudication")).to_be_hidden()
    screenshot(page, "review-page")

    page.keyboard.press("j")
    expect(cards.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("k")
    page.keyboard.press("ArrowRight")
    expect(cards.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("a")  # approve politics
    expect(page.locator("#review-status")).to_contain_text("Approved item x0: politics")
    # the next item (no disagreement) is shown at once
    expect(page.locator("#review-text")).to_have_text("budget vote today")
    expect(page.locator("#review-disagreement")).to_be_hidden()
    expect(page.locator("#review-suggestion")).to_be_hidden()
    final = FinalLabel.objects.get(item=tie)
    assert (final.value, final.source) == ({"label": "politics"}, "review")
    review = Review.objects.get(annotation=b)
    assert (review.verdict, review.reviewer_id) == ("approve", reviewer.pk)

    # correct it: C, then label 3 (tech) saves at once
    page.keyboard.press("c")
    expect(page.locator("#review-correct")).to_be_visible()
    page.keyboard.press("3")
    expect(page.locator("#review-empty")).to_be_visible()
    final = FinalLabel.objects.get(item=agreed)
    assert (final.value, final.source) == ({"label": "tech"}, "adjudication")
    assert Item.objects.get(pk=agreed.pk).status == "approved"
    screenshot(page, "review-page-empty")
    assert errors == []


def test_reject_with_a_comment_and_the_help(page: Page, live_server, logged_in, errors):
    project, [item] = project_with_items(["spam spam spam"], review_policy="all")
    [ann] = annotated(project, item, {"label": "tech"})
    open_review(logged_in(reviewer_for(project)), live_server, project)
    page.keyboard.press("?")
    expect(page.locator("#review-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#review-help")).to_be_hidden()
    page.keyboard.press("/")
    expect(page.locator("#review-comment")).to_be_focused()
    page.keyboard.type("not an article")  # typing "a" and "r" here must not approve or reject
    page.keyboard.press("Escape")
    assert not Review.objects.exists()
    page.keyboard.press("r")
    expect(page.locator("#review-empty")).to_be_visible()
    expect(page.locator("#review-status")).to_have_text(
        "Rejected item x0: it goes back to the labeling queue for another annotator."
    )
    review = Review.objects.get(annotation=ann)
    assert (review.verdict, review.comment) == ("reject", "not an article")
    # back in the labeling queue (the project's manager may still label it), the annotation out of the count
    assert Item.objects.get(pk=item.pk).status == "open"
    assert Annotation.objects.get(pk=ann.pk).counts is False
    assert not FinalLabel.objects.filter(item=item).exists()
    assert errors == []


def test_adjudication_is_shown_and_only_a_correction_decides_it(page: Page, live_server, logged_in, errors):
    """max_rejections 1: one reject sent the item to adjudication. The page says so, shows the rejected annotation
    with its verdict and comment, refuses A and R with a sentence (nothing is sent), and C + a label decides it."""
    project, [item] = project_with_items(["the vote was close"], review_policy="all", max_rejections=1)
    [ann] = annotated(project, item, {"label": "sports"})
    first = reviewer_for(project)
    review_submit(annotation=ann, project=project, reviewer=first, verdict="reject", comment="it is politics")
    assert (Item.objects.get(pk=item.pk).status, Item.objects.get(pk=item.pk).adjudication) == ("in_review", True)

    open_review(logged_in(reviewer_for(project)), live_server, project)
    expect(page.locator("#review-adjudication")).to_be_visible()
    expect(page.locator("#review-adjudication-note")).to_contain_text("Rejected 1 time (the project's maximum)")
    expect(page.locator("#review-lease")).to_contain_text("Held for you until")
    card = page.locator(".ann-card")
    expect(card).to_have_count(1)
    expect(card).to_have_class(re.compile(r"\brejected\b"))
    expect(card).to_contain_text(f"Rejected by {first.username}: “it is politics”")
    expect(page.locator("#review-approve")).to_be_disabled()
    expect(page.locator("#review-reject")).to_be_disabled()
    screenshot(page, "review-adjudication")
    page.keyboard.press("a")
    expect(page.locator("#review-status")).to_contain_text("awaits adjudication")
    page.keyboard.press("r")
    assert Review.objects.count() == 1
    page.keyboard.press("c")
    page.keyboard.press("2")  # politics
    expect(page.locator("#review-empty")).to_be_visible()
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"label": "politics"}, "adjudication")
    row = Item.objects.get(pk=item.pk)
    assert (row.status, row.adjudication, row.rejections) == ("approved", False, 1)
    assert errors == []


def test_multilabel_correction_toggles_then_enter(page: Page, live_server, logged_in, errors):
    project, [item] = project_with_items(
        ["a text"], task_type="multilabel", labels=["a", "b", "c"], review_policy="all"
    )
    annotated(project, item, {"labels": ["a", "b"]})
    open_review(logged_in(reviewer_for(project)), live_server, project)
    page.keyboard.press("c")
    page.keyboard.press("2")  # drop b
    page.keyboard.press("3")  # add c
    page.keyboard.press("Enter")
    expect(page.locator("#review-empty")).to_be_visible()
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"labels": ["a", "c"]}, "adjudication")
    assert errors == []


def test_untrusted_text_and_labels_render_as_text(page: Page, live_server, logged_in, errors):
    evil_text = '<img src=x onerror="window.__x=1">'
    evil_label = "<script>window.__y=1</script>"
    project, [item] = project_with_items([evil_text], labels=[evil_label, "ok"], review_policy="all")
    annotated(project, item, {"label": evil_label})
    open_review(logged_in(reviewer_for(project)), live_server, project)
    expect(page.locator("#review-text")).to_have_text(evil_text)
    expect(page.locator(".ann-card .label-chip")).to_have_text(evil_label)
    assert page.locator("#review-app img").count() == 0
    assert page.evaluate("() => [window.__x, window.__y]") == [None, None]
    page.keyboard.press("a")
    expect(page.locator("#review-status")).to_contain_text(evil_label)
    assert FinalLabel.objects.get(item=item).value == {"label": evil_label}
    assert page.evaluate("() => [window.__x, window.__y]") == [None, None]
    assert errors == []


def test_spans_are_marked_by_code_points_and_corrected_by_dropping(page: Page, live_server, logged_in, errors):
    text = "Hi 👋 Zoë in Paris"  # the emoji is one code point, two UTF-16 units
    spans = [{"start": 5, "end": 8, "label": "PER"}, {"start": 12, "end": 17, "label": "LOC"}]
    project, [item] = project_with_items([text], task_type="spans", labels=["PER", "LOC"], review_policy="all")
    annotated(project, item, {"spans": spans})
    open_review(logged_in(reviewer_for(project)), live_server, project)
    marks = page.locator("#review-text mark")
    expect(marks).to_have_count(2)
    expect(marks.nth(0)).to_have_text("Zoë")
    expect(marks.nth(1)).to_have_text("Paris")
    expect(page.locator("#review-text")).to_have_text(text)
    expect(page.locator(".ann-card .span-text").nth(0)).to_have_text("Zoë")
    page.keyboard.press("c")
    page.keyboard.press("2")  # drop LOC
    expect(page.locator("#review-correct-options button").nth(1)).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Enter")
    expect(page.locator("#review-empty")).to_be_visible()
    final = FinalLabel.objects.get(item=item)
    assert (final.value, final.source) == ({"spans": [spans[0]]}, "adjudication")
    assert errors == []


def test_review_page_passes_axe_wcag_aa(browser, live_server):
    from tests.browser.test_manage_pages import AXE, axe_violations

    if not AXE.exists():
        pytest.skip("axe-core is missing: run `npm ci`")
    project, [item, _] = project_with_items(["one text", "two"], annotations_per_item=2)
    annotated(project, item, {"label": "sports"}, {"label": "tech"})
    empty, _ = project_with_items(["x"])
    reviewer = reviewer_for(project)
    add_member(empty, reviewer, "reviewer")
    adjudicated, [adj_item] = project_with_items(["y"], review_policy="all", max_rejections=1)
    [adj_ann] = annotated(adjudicated, adj_item, {"label": "sports"})
    review_submit(annotation=adj_ann, project=adjudicated, reviewer=reviewer_for(adjudicated), verdict="reject")
    add_member(adjudicated, reviewer, "reviewer")

    def loaded(page):
        expect(page.locator(".ann-card")).to_have_count(2)

    def correcting(page):
        loaded(page)
        page.keyboard.press("c")
        expect(page.locator("#review-correct")).to_be_visible()

    def helping(page):
        loaded(page)
        page.keyboard.press("?")
        expect(page.locator("#review-help")).to_be_visible()

    def empty_state(page):
        expect(page.locator("#review-empty")).to_be_visible()

    def adjudication(page):
        expect(page.locator("#review-adjudication-note")).to_be_visible()
        expect(page.locator(".ann-card.rejected .ann-review")).to_be_visible()

    found = axe_violations(
        browser,
        live_server,
        reviewer,
        [
            ("review", f"/projects/{project.pk}/review", loaded),
            ("review correcting", f"/projects/{project.pk}/review", correcting),
            ("review help", f"/projects/{project.pk}/review", helping),
            ("review empty", f"/projects/{empty.pk}/review", empty_state),
            ("review adjudication", f"/projects/{adjudicated.pk}/review", adjudication),
        ],
    )
    assert found == {}, found
