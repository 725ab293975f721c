"""The snapshot page in a real Chromium, against the live server and the real snapshot API: build a snapshot
through the form (a label and a metadata filter, a split), watch it go from queued to ready, download its JSONL.

The labels are made the way users make them: an annotator takes items from `next` and submits through the REST
API (overlap 1, no review: each submit approves its item by consensus). The build runs here, in the test
thread, as the worker would run it (the page's POST queues the Job; the test plays the worker, as the import
page's test does), so nothing is left in a broker for another test.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections import Counter

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Item, Snapshot
from tests.annotation.apis.helpers import label_next
from tests.browser.conftest import project_with_items, screenshot
from tests.conftest import add_member, client_for, make_user

# the build publishes its progress on the "jobs" connection (annotation/services/jobs.py), as in a worker
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "jobs"])]

LABELS = ("sports", "politics", "tech")
N_LABELED = 18


def source_of(i: int) -> str:
    return "sms" if i % 5 == 0 else "web"


def label_of(i: int) -> str:
    return LABELS[i % 3]


def page_errors(errors: list[str]) -> list[str]:
    """Console errors other than the browser's own note of an HTTP error answer the test provoked (the 400)."""
    return [e for e in errors if "Failed to load resource" not in e]


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Snapshot build Jobs the web process queued; the test runs them itself instead of a Celery worker."""
    from annotation.tasks import snapshot_build_task

    jobs: list[int] = []
    monkeypatch.setattr(snapshot_build_task, "delay", jobs.append)
    return jobs


def run_build_when_queued(queued: list[int]) -> Snapshot:
    """Play the worker: wait until the page's POST queued the build Job, then run it here."""
    from annotation.datasets.build import snapshot_build

    deadline = time.monotonic() + 30
    while not queued and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queued, "the form queued no snapshot build"
    snapshot = snapshot_build(job_id=queued[0])
    assert snapshot is not None
    return snapshot


@pytest.fixture
def labeled_project():
    """18 approved items (labels cycling sports, politics, tech; metadata `source` sms for every fifth, else web)
    and 2 open ones, labeled by `ann` through next/submit."""
    texts = [{"text": f"news story {i}", "source": source_of(i)} for i in range(N_LABELED + 2)]
    ann = make_user("ann")
    project, items = project_with_items(texts, labels=LABELS, annotators=[ann])
    client = client_for(ann)
    for i in range(N_LABELED):
        label_next(client, project, {"label": label_of(i)})
    engineer = make_user("eve")
    add_member(project, engineer, "engineer")
    return project, items, engineer


def test_build_a_filtered_split_snapshot_watch_it_and_download_its_jsonl(
    page: Page, live_server, logged_in, errors, queued, labeled_project, tmp_path
):
    project, _, engineer = labeled_project
    assert Item.objects.filter(project=project, status="approved").count() == N_LABELED
    expected = [f"x{i}" for i in range(N_LABELED) if label_of(i) == "tech" and source_of(i) == "web"]
    assert len(expected) == 5  # x2, x8, x11, x14, x17 (x5 is sms; x18, x19 are not approved)

    logged_in(engineer).goto(f"{live_server.url}/projects/{project.pk}/snapshots")
    # no snapshot yet: the empty state says what one is, and the form is open
    expect(page.locator("#snapshot-empty")).to_be_visible()
    expect(page.locator("#snapshot-empty")).to_contain_text("No snapshots yet")
    expect(page.locator("#snapshot-panel")).to_be_visible()
    expect(page.locator("#snapshot-new")).to_have_attribute("aria-expanded", "true")

    page.fill("#s-name", "tech from the web")
    page.check('input[name="labels"][value="tech"]')
    page.click("#meta-add")
    expect(page.locator("#meta-field-1")).to_be_focused()
    page.keyboard.type("source")
    page.fill("#meta-value-1", "web")
    page.fill("#s-train", "0.6")
    page.fill("#s-validation", "0.2")
    page.fill("#s-test", "0.3")
    page.fill("#s-seed", "7")
    # the live hint, then the API's own answer at the field it names
    expect(page.locator("#split-sum")).to_have_text("Sums to 1.1: train, validation and test must sum to 1.")
    page.press("#s-seed", "Enter")  # a normal form: Enter submits
    expect(page.locator("#snapshot-errors")).to_be_visible()
    expect(page.locator("#snapshot-errors")).to_contain_text("train + validation + test must be 1.")
    field_error = page.locator('#snapshot-form fieldset[data-field="split"] > .field-error')
    expect(field_error).to_have_text("train + validation + test must be 1.")
    expect(page.locator('fieldset[data-field="split"]')).to_have_attribute("aria-invalid", "true")
    screenshot(page, "snapshots-form-error")
    assert queued == []
    assert not Snapshot.objects.exists()

    page.fill("#s-test", "0.2")
    expect(page.locator("#split-sum")).to_have_text("Sums to 1.")
    page.click("#snapshot-create")
    card = page.locator("#snapshot-list li.snapshot").first
    expect(card).to_have_attribute("data-status", "building")
    expect(card.locator(".progress-text")).to_have_text("Waiting for a worker…")
    expect(page.locator("#snapshot-panel")).to_be_hidden()
    expect(page.locator("#snapshot-errors")).to_be_hidden()
    expect(page.locator("#snapshot-empty")).to_be_hidden()

    snapshot = run_build_when_queued(queued)
    assert snapshot.status == "ready", snapshot.error
    assert snapshot.filters["labels"] == ["tech"]
    assert snapshot.filters["meta"] == {"source": "web"}
    assert snapshot.filters["status"] == ["approved"]
    assert (snapshot.split["train"], snapshot.split["validation"], snapshot.split["test"]) == (0.6, 0.2, 0.2)
    assert snapshot.split["seed"] == 7
    assert snapshot.split["stratify"] is True

    # the page follows the Job and turns the card ready
    expect(card).to_have_attribute("data-status", "ready")
    expect(card.locator(".badge")).to_have_text("ready")
    expect(card.locator(".snapshot-name")).to_have_text("tech from the web")
    expect(card.locator(".snapshot-rows")).to_have_text("5")
    splits = snapshot.splits
    assert sum(splits.values()) == 5
    expect(card.locator(".snapshot-splits")).to_have_text(
        " · ".join(f"{k} {splits[k]}" for k in ("train", "validation", "test") if k in splits)
    )
    expect(card.locator(".snapshot-sha code")).to_have_text(snapshot.sha256[:12])
    expect(card.locator(".snapshot-sha code")).to_have_attribute("data-sha256", snapshot.sha256)
    expect(card.locator(".snapshot-filters")).to_contain_text("labels tech")
    expect(card.locator(".snapshot-labels")).to_have_text("tech 5")
    # one annotation per item, equal to its final label; no item has two, so no alpha
    expect(card.locator(".snapshot-agreement")).to_have_text("100.0 % mean item agreement")
    expect(page.locator("#snapshot-list-status")).to_have_text("Snapshot “tech from the web” is ready: 5 rows.")
    formats = card.locator(".snapshot-downloads a")
    expect(formats).to_have_count(6)  # no CoNLL for a classification project
    assert [formats.nth(i).get_attribute("data-format") for i in range(6)] == [
        "jsonl",
        "csv",
        "parquet",
        "hf",
        "labelstudio",
        "card",
    ]
    screenshot(page, "snapshots-ready")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    card.get_by_role("button", name="Copy the SHA-256 of tech from the web").click()
    expect(page.locator("#snapshot-list-status")).to_have_text(f"SHA-256 copied: {snapshot.sha256}")
    assert page.evaluate("navigator.clipboard.readText()") == snapshot.sha256

    with page.expect_download() as info:
        card.locator('a[data-format="jsonl"]').click()
    path = tmp_path / "snapshot.jsonl"
    info.value.save_as(path)
    content = path.read_bytes()
    assert hashlib.sha256(content).hexdigest() == snapshot.sha256  # the hash on the card is the file's
    rows = [json.loads(line) for line in content.decode().splitlines()]
    assert [r["external_id"] for r in rows] == expected  # by item id
    assert {r["label"] for r in rows} == {"tech"}
    assert {r["source"] for r in rows} == {"web"}
    assert {r["label_source"] for r in rows} == {"consensus"}
    assert Counter(r["split"] for r in rows) == Counter({k: v for k, v in splits.items() if v})
    assert all(r["annotations"] == [{"annotator": "ann", "value": "tech"}] for r in rows)

    # two more links: the CSV (read back by the csv module) and the dataset card
    with page.expect_download() as info:
        card.locator('a[data-format="csv"]').click()
    csv_path = tmp_path / "snapshot.csv"
    info.value.save_as(csv_path)
    with csv_path.open(newline="", encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    assert [(r["external_id"], r["label"], r["split"]) for r in csv_rows] == [
        (r["external_id"], r["label"], r["split"]) for r in rows
    ]
    with page.expect_download() as info:
        card.locator('a[data-format="card"]').click()
    card_path = tmp_path / "README.md"
    info.value.save_as(card_path)
    readme = card_path.read_text(encoding="utf-8")
    assert readme.startswith("---\n")
    assert snapshot.sha256 in readme
    assert page_errors(errors) == []


def test_escape_closes_the_form_and_a_failed_build_says_why(page: Page, live_server, logged_in, errors):
    manager = make_user()
    project, _ = project_with_items(["one"], owner=manager)
    Snapshot.objects.create(
        project=project, name="broken", status="failed", error="the disk is full", created_by=manager
    )
    logged_in(manager).goto(f"{live_server.url}/projects/{project.pk}/snapshots")
    card = page.locator('#snapshot-list li[data-status="failed"]')
    expect(card.locator(".snapshot-error")).to_have_text("The build failed: the disk is full")
    expect(card.locator(".snapshot-downloads")).to_have_count(0)
    expect(page.locator("#snapshot-empty")).to_be_hidden()
    screenshot(page, "snapshots-failed")
    # a project with snapshots shows the list first; the form opens on demand and Escape closes it
    expect(page.locator("#snapshot-panel")).to_be_hidden()
    page.click("#snapshot-new")
    expect(page.locator("#snapshot-panel")).to_be_visible()
    expect(page.locator("#s-name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#snapshot-panel")).to_be_hidden()
    expect(page.locator("#snapshot-new")).to_be_focused()
    expect(page.locator("#snapshot-new")).to_have_attribute("aria-expanded", "false")
    assert errors == []


def test_the_list_is_paged_newest_first(page: Page, live_server, logged_in, errors):
    manager = make_user()
    project, _ = project_with_items(["one"], owner=manager)
    for n in range(22):
        Snapshot.objects.create(project=project, name=f"s{n}", status="ready", sha256=f"{n:064x}")
    logged_in(manager).goto(f"{live_server.url}/projects/{project.pk}/snapshots")
    cards = page.locator("#snapshot-list li.snapshot")
    expect(cards).to_have_count(20)
    expect(cards.first.locator(".snapshot-name")).to_have_text("s21")
    expect(page.locator("#snapshot-page-text")).to_have_text("Page 1 of 2")
    expect(page.locator("#snapshot-prev")).to_be_disabled()
    page.click("#snapshot-next")
    expect(cards).to_have_count(2)
    expect(cards.nth(1).locator(".snapshot-name")).to_have_text("s0")
    expect(page.locator("#snapshot-page-text")).to_have_text("Page 2 of 2")
    expect(page.locator("#snapshot-next")).to_be_disabled()
    page.click("#snapshot-prev")
    expect(cards).to_have_count(20)
    assert errors == []


def test_snapshot_page_passes_axe_wcag_aa(browser, live_server):
    from tests.browser.test_manage_pages import AXE, axe_violations

    if not AXE.exists():
        pytest.skip("axe-core is missing: run `npm ci`")
    manager = make_user()
    project, _ = project_with_items(["one"], owner=manager, task_type="spans")
    Snapshot.objects.create(
        project=project,
        name="v1",
        status="ready",
        rows=1,
        splits={"train": 1, "validation": 0, "test": 0},
        sha256="ab" * 32,
        filters={"status": ["approved"], "labels": [], "gold": "include"},
        split={"train": 1, "validation": 0, "test": 0, "seed": 0, "stratify": True, "group_by": None},
    )

    def loaded(page):
        expect(page.locator('#snapshot-list li[data-status="ready"]')).to_be_visible()

    def form_with_errors(page):
        loaded(page)
        page.click("#snapshot-new")
        page.click("#meta-add")
        page.fill("#s-train", "0.9")
        page.fill("#s-annotators", "nobody")
        page.click("#snapshot-create")
        expect(page.locator("#snapshot-errors")).to_be_visible()
        # an input's error: next to it, marked invalid, and read with it (aria-describedby)
        message = page.locator('.field-error[data-error-for="filters.annotators"]')
        expect(message).to_contain_text("nobody")
        annotators = page.locator("#s-annotators")
        expect(annotators).to_have_attribute("aria-invalid", "true")
        described = (annotators.get_attribute("aria-describedby") or "").split()
        assert described[0] == "s-annotators-hint"
        assert message.get_attribute("id") in described

    found = axe_violations(
        browser,
        live_server,
        manager,
        [
            ("snapshots", f"/projects/{project.pk}/snapshots", loaded),
            ("snapshots with errors", f"/projects/{project.pk}/snapshots", form_with_errors),
        ],
    )
    assert found == {}, json.dumps(found, indent=1)


def test_the_license_is_set_on_the_settings_page(page: Page, live_server, logged_in, errors):
    """The project's license (written into every snapshot's dataset card) is edited with the other settings."""
    manager = make_user()
    project, _ = project_with_items(["one"], owner=manager)
    logged_in(manager).goto(f"{live_server.url}/projects/{project.pk}/settings")
    expect(page.locator("#f-license")).to_have_value("")
    page.fill("#f-license", " cc-by-4.0 ")
    page.click("#project-save")
    expect(page.locator("#project-status")).to_have_text("Saved.")
    project.refresh_from_db()
    assert project.license == "cc-by-4.0"
    page.reload()
    expect(page.locator("#f-license")).to_have_value("cc-by-4.0")
    page.fill("#f-license", "")
    page.click("#project-save")
    expect(page.locator("#project-status")).to_have_text("Saved.")
    project.refresh_from_db()
    assert project.license == ""
    assert errors == []
